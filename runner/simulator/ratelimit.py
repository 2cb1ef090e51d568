"""Bria's per-endpoint rate limit: a sliding window over arrival times.

Only admitted requests enter the window (a refused request does not push the window
forward), which is how API gateways count, so a client that waits Retry-After gets in.
"""

from __future__ import annotations

import math
import threading
from collections import deque


class SlidingWindow:
    def __init__(self) -> None:
        self._arrivals: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, key: str, now: float, limit: int | None, window: float) -> int | None:
        """None when admitted, else the whole seconds to wait (Retry-After, at least 1)."""
        if limit is None:
            return None
        with self._lock:
            arrivals = self._arrivals.setdefault(key, deque())
            while arrivals and arrivals[0] <= now - window:
                arrivals.popleft()
            if len(arrivals) < limit:
                arrivals.append(now)
                return None
            return max(1, math.ceil(arrivals[0] + window - now))
