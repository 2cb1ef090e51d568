"""A client-side rate limiter per endpoint, shared by every thread of one client.

Bria limits each endpoint ("METHOD /path/template") to a number of requests per minute
and counts requests by arrival. The limiter keeps, per endpoint, a log of slots: a slot
is taken when a request is sent, held while it is in flight, and expires ``window``
seconds after its ANSWER arrived. Since a request arrives at the server between those
two moments, the server can never see more than ``rpm`` arrivals in any window, whatever
the latency jitter, so the client runs at the plan's limit without provoking 429s.

A 429 still blocks that endpoint until its Retry-After (or a back-off) has passed.

Clock and sleep are injectable: with a fake clock, ``sleep`` must advance it.

``Budget`` is the seam: what the session needs of a limiter. ``RateLimiter`` is the in-memory
one (one process; several pipelines in it may share it); a studio's PostgreSQL state brings
one whose slots live in the database, shared by every runner (``runner.state.budget``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

OnWait = Callable[[str, float], None]


class Budget(Protocol):
    """Per-endpoint request slots: ``acquire`` before a request is sent (waiting as needed;
    ``on_wait`` hears of each known wait), ``release`` when its answer (or failure) arrived,
    ``block`` after a 429 for its Retry-After."""

    rpm: int | None
    window: float

    def acquire(self, key: str, on_wait: OnWait | None = None) -> float: ...

    def release(self, key: str) -> None: ...

    def block(self, key: str, seconds: float) -> None: ...

    def usage(self, key: str) -> float: ...

    def stats(self) -> dict[str, dict[str, float]]: ...

# A thread whose endpoint is full of in-flight requests waits for an answer to free a slot;
# with real time it is woken by the release, this only bounds a missed wake-up.
_IDLE_WAIT = 0.5


@dataclass
class _Endpoint:
    expiries: deque[float] = field(default_factory=deque)  # answered slots, ascending
    in_flight: int = 0
    blocked_until: float = 0.0
    waited: float = 0.0
    blocks: int = 0

    def prune(self, now: float) -> None:
        while self.expiries and self.expiries[0] <= now:
            self.expiries.popleft()

    def wait_needed(self, now: float, rpm: int) -> float | None:
        """0 when a slot is free now; seconds until one frees; None: wait for an answer."""
        if self.blocked_until > now:
            return self.blocked_until - now
        used = len(self.expiries) + self.in_flight
        if used < rpm:
            return 0.0
        if self.in_flight >= rpm:
            return None
        return self.expiries[used - rpm] - now


class RateLimiter:
    """Per-endpoint sliding-window limiter: at most ``rpm`` requests per ``window`` seconds.

    ``rpm=None`` disables limiting (429 blocks still apply). ``on_wait(endpoint, seconds)``
    is told each time a caller has to wait a known time.
    """

    def __init__(
        self,
        rpm: int | None = 60,
        window: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: OnWait | None = None,
    ) -> None:
        if rpm is not None and rpm < 1:
            raise ValueError(f"rpm must be at least 1, got {rpm}")
        self.rpm, self.window = rpm, window
        self._clock, self._sleep, self._on_wait = clock, sleep, on_wait
        # Real sleeps wait on the condition so a released slot wakes a waiter at once.
        self._is_real_time = sleep is time.sleep
        self._cond = threading.Condition()
        self._endpoints: dict[str, _Endpoint] = {}

    def acquire(self, key: str, on_wait: OnWait | None = None) -> float:
        """Take a slot for endpoint ``key``, waiting as needed; returns the seconds waited."""
        notify = on_wait or self._on_wait
        waited = 0.0
        with self._cond:
            endpoint = self._endpoints.setdefault(key, _Endpoint())
            while True:
                now = self._clock()
                endpoint.prune(now)
                wait = (
                    endpoint.wait_needed(now, self.rpm)
                    if self.rpm
                    else self._block_left(endpoint, now)
                )
                if wait is not None and wait <= 0:
                    endpoint.in_flight += 1
                    endpoint.waited += waited
                    return waited
                if wait is not None and notify is not None:
                    self._notify_wait(notify, key, wait)
                waited += self._pause(wait, now)

    def release(self, key: str) -> None:
        """The answer (or the failure) of a request on ``key`` arrived: start its slot's expiry."""
        with self._cond:
            endpoint = self._endpoints.setdefault(key, _Endpoint())
            endpoint.in_flight = max(0, endpoint.in_flight - 1)
            if self.rpm:
                endpoint.expiries.append(self._clock() + self.window)
            self._cond.notify_all()

    def usage(self, key: str) -> float:
        """The fraction of ``key``'s budget in use right now (0 when unlimited)."""
        if not self.rpm:
            return 0.0
        with self._cond:
            endpoint = self._endpoints.setdefault(key, _Endpoint())
            endpoint.prune(self._clock())
            return (len(endpoint.expiries) + endpoint.in_flight) / self.rpm

    def block(self, key: str, seconds: float) -> None:
        """Hold every request on ``key`` for ``seconds`` (after a 429)."""
        with self._cond:
            endpoint = self._endpoints.setdefault(key, _Endpoint())
            endpoint.blocked_until = max(endpoint.blocked_until, self._clock() + seconds)
            endpoint.blocks += 1

    def stats(self) -> dict[str, dict[str, float]]:
        """Per endpoint: seconds callers waited, 429 blocks, requests in flight."""
        with self._cond:
            return {
                key: {"waited": e.waited, "blocks": e.blocks, "in_flight": e.in_flight}
                for key, e in self._endpoints.items()
            }

    @staticmethod
    def _block_left(endpoint: _Endpoint, now: float) -> float:
        return max(0.0, endpoint.blocked_until - now)

    def _notify_wait(self, notify: OnWait, key: str, wait: float) -> None:
        # Outside the lock: a slow progress display must not stall other endpoints.
        # Safe for known waits: a release meanwhile cannot shorten an expiry or a block.
        self._cond.release()
        try:
            notify(key, wait)
        finally:
            self._cond.acquire()

    def _pause(self, wait: float | None, now: float) -> float:
        """Wait (lock held on entry and exit); returns the clock time that passed."""
        if self._is_real_time:
            self._cond.wait(timeout=_IDLE_WAIT if wait is None else wait)
        else:
            self._cond.release()
            try:
                self._sleep(_IDLE_WAIT if wait is None else wait)
            finally:
                self._cond.acquire()
        return max(0.0, self._clock() - now)
