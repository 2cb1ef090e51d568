"""How many workers of a concurrent phase may be busy at once (``concurrency: auto``).

Bria's budget is per endpoint: ``rpm`` requests per ``window`` seconds. A step costs, on each
endpoint it uses, the requests measured so far per started step (status polls included), so
the busiest endpoint lets ``rpm / cost`` steps start per window. By Little's law, steps that
take W seconds each keep ``rate * W`` of them in flight; and since a window's budget may be
spent at once, the target is ``rate * max(W, window)``: with jobs shorter than the window a
whole window's worth goes out together, with longer jobs (a cold model, a slow plan) more are
in flight so the budget stays in use. W is the steps' own time, without waits for a rate-limit
slot (counting those would feed the target its own queue).

The target is bounded by ``AUTO_CAP``: each busy worker is a thread, a request in flight holds
one connection, and a job waiting for Bria holds neither memory nor a connection, so 32
workers keep a run small while letting the Starter plan's 60 requests a minute and a window's
burst of Enterprise jobs run together. A number in the file (``concurrency: 8``) bounds it too.

Trouble halves what may be busy: a 429 (someone else spends the same budget), or a storm of
server errors (``STORM`` 5xx answers within one window). At most one halving per
``window / 6``, so one burst of 429s counts once. After each calm window the allowance
doubles, back up to the target.

``FlowControl`` is the arithmetic (clock injected, unit-tested); ``Flow`` is the executor's
gate around it: a worker enters before taking a step and leaves when the step is done.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

AUTO_CAP = 32
STORM = 3  # server errors within one window that count as trouble


@dataclass(frozen=True)
class Readings:
    """What the client has seen since the phase began: requests per rate-limited endpoint,
    429 answers and 5xx answers (all endpoints)."""

    requests: Mapping[str, float]
    throttled: int = 0
    server_errors: int = 0


Stats = Mapping[str, Mapping[str, float]]


def readings_since(before: Stats, now: Stats, limited: Collection[str]) -> Readings:
    """The client's figures (``BriaClient.stats()``) between two snapshots; requests only on
    the ``limited`` endpoints (result links do not count against the budget)."""
    def delta(key: str, name: str) -> float:
        return now[key].get(name, 0) - before.get(key, {}).get(name, 0)

    return Readings({key: delta(key, "requests") for key in limited if key in now},
                    int(sum(delta(key, "rate_limited") for key in now)),
                    int(sum(delta(key, "server_errors") for key in now)))


class FlowControl:
    """The allowance of busy workers; pure bookkeeping over what it is told."""

    def __init__(self, ceiling: int | None, rpm: int | None, window: float, *,
                 clock: Callable[[], float] = time.monotonic, cap: int = AUTO_CAP) -> None:
        self.ceiling = max(1, min(cap, ceiling) if ceiling else cap)
        self.is_auto = ceiling is None
        self.rpm, self.window, self._clock = rpm, window, clock
        self.started = 0
        self._durations: deque[float] = deque(maxlen=32)
        self._cost = 1.0  # requests per started step on the busiest endpoint
        self._seen = Readings({})
        self._errors: deque[float] = deque()  # when recent 5xx answers were seen
        self._held: int | None = None  # the back-off's allowance, until it grows back
        self._last_change = -math.inf
        self.halvings = 0

    def typical(self) -> float:
        return statistics.median(self._durations) if self._durations else 0.0

    def target(self) -> int:
        """rate * max(W, window), within the ceiling; the ceiling itself when unlimited."""
        if not self.is_auto or not self.rpm:
            return self.ceiling
        per_window = self.rpm / max(self._cost, 1e-6)
        held_for = max(self.typical(), self.window)
        return max(1, min(self.ceiling, math.ceil(per_window * held_for / self.window)))

    def limit(self, busy: int) -> int:
        """How many workers may be busy now, ``busy`` being how many are."""
        target = self.target()
        if self._held is None:
            return target
        now = self._clock()
        if now - self._last_change >= self.window:  # a calm window: grow back
            self._held, self._last_change = self._held * 2, now
            if self._held >= target:
                self._held = None
                return target
        return min(self._held, target)

    def began(self) -> None:
        self.started += 1

    def ended(self, seconds: float | None) -> None:
        """A step ended after ``seconds`` of its own time (None: it did not run)."""
        if seconds is not None:
            self._durations.append(max(0.0, seconds))

    def observe(self, readings: Readings, busy: int) -> None:
        """New client figures: learn the cost per step, react to 429s and 5xx storms."""
        if self.started and readings.requests:
            self._cost = max(readings.requests.values()) / self.started
        now = self._clock()
        if readings.throttled > self._seen.throttled:
            self._trouble(now, busy)
        for _ in range(readings.server_errors - self._seen.server_errors):
            self._errors.append(now)
        while self._errors and self._errors[0] <= now - self.window:
            self._errors.popleft()
        if len(self._errors) >= STORM:
            self._errors.clear()
            self._trouble(now, busy)
        self._seen = readings

    def _trouble(self, now: float, busy: int) -> None:
        if now - self._last_change < self.window / 6 and self._held is not None:
            self._last_change = now  # the same burst: no second halving, but no calm either
            return
        allowed = self._held if self._held is not None else self.target()
        self._held = max(1, min(allowed, max(busy, 1)) // 2)
        self._last_change = now
        self.halvings += 1


class Flow:
    """The executor's gate: ``enter`` before a step (False once the run stops), ``leave``
    after it with the step's own seconds."""

    def __init__(self, control: FlowControl, readings: Callable[[], Readings]) -> None:
        self.control = control
        self._readings = readings
        self._cond = threading.Condition()
        self.busy = 0
        self.peak = 0

    def enter(self, stop: threading.Event) -> bool:
        """Wait until one more worker may be busy, for the step the caller has taken."""
        with self._cond:
            while not stop.is_set():
                self.control.observe(self._readings(), self.busy)
                if self.busy < self.control.limit(self.busy):
                    self.busy += 1
                    self.peak = max(self.peak, self.busy)
                    self.control.began()
                    return True
                # A step's end notifies; the timeout lets a calm window grow the allowance.
                self._cond.wait(timeout=max(0.05, self.control.window / 12))
            return False

    def leave(self, seconds: float | None) -> None:
        with self._cond:
            self.busy -= 1
            self.control.ended(seconds)
            self.control.observe(self._readings(), self.busy)
            self._cond.notify_all()
