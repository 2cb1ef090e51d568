"""When to poll a generation job. Status polls share one per-endpoint budget with every job
in flight, so polling blindly (every job every second from the moment it is submitted)
spends the budget on jobs that are not done and makes finished ones wait for the next
window.

The pacer learns how long jobs take: until one has finished, a single job (the probe)
polls at the plain cadence while the others wait for it; after that, a job's first poll
comes when a typical job would be done. Between polls, once the status endpoint's budget
is half used, each job's polls are spaced so that all jobs together stay within it
(``rpm`` per ``window``); while there is slack the plain cadence applies.
"""

from __future__ import annotations

import statistics
import threading
from collections import deque
from collections.abc import Callable

STATUS_ENDPOINT = "GET /v2/status/{id}"


class JobPacer:
    def __init__(self, min_interval: float, rpm: int | None, window: float,
                 usage: Callable[[], float] = lambda: 1.0) -> None:
        self.min_interval = min_interval
        self.per_second = (rpm / window) if rpm else None
        self.usage = usage
        self._cond = threading.Condition()
        self._in_flight = 0
        self._is_probing = False
        self._durations: deque[float] = deque(maxlen=32)

    def start(self, stop: threading.Event) -> tuple[bool, float]:
        """Register a job in flight: (is it the probe, seconds a typical job takes)."""
        with self._cond:
            self._in_flight += 1
            while not self._durations and not stop.is_set():
                if not self._is_probing:
                    self._is_probing = True
                    return True, 0.0
                self._cond.wait(timeout=max(0.05, self.min_interval))  # the probe will notify
            typical = statistics.median(self._durations) if self._durations else 0.0
            return False, typical

    def finish(self, took: float | None, *, is_probe: bool) -> None:
        with self._cond:
            self._in_flight = max(0, self._in_flight - 1)
            if took is not None:
                self._durations.append(took)
            if is_probe:
                self._is_probing = False
            self._cond.notify_all()

    def interval(self) -> float:
        """Between polls of one job: all jobs in flight together stay within the budget."""
        if self.per_second is None or self.usage() < 0.5:
            return self.min_interval
        with self._cond:
            share = self._in_flight / self.per_second
        return max(self.min_interval, share)
