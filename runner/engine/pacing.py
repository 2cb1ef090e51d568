"""When to poll a generation job, and when to look at a training again.

Status polls share one per-endpoint budget with every job
in flight, so polling blindly (every job every second from the moment it is submitted)
spends the budget on jobs that are not done and makes finished ones wait for the next
window.

The pacer learns how long jobs take, and each job polls when it is expected to be done:

- The durations earlier runs learned (recorded in the state with each image) start it; with
  none, until one job has finished, a single job (the probe) polls at the plain cadence, a
  little less often as it ages (every ``elapsed / 8``, within ``min_interval`` and
  ``STRETCH`` x ``min_interval``); the others wait for it.
- A job's next poll, ``elapsed`` seconds after its submission, comes at the ``QUANTILE`` of
  the learned durations that are longer than ``elapsed`` (the first poll: of all of them), so
  most jobs are found done at their first poll; at least ``min_interval`` after the previous
  poll was sent. A job older than every learned duration polls at once the first time, then
  every ``elapsed / 4`` (within the same bounds as the probe).
- A learned duration is the middle of the last interval that bracketed the end (the last poll
  that found the job in progress, and the one that found it done); found done at its first
  poll, the job counts that poll's time.
- Between polls, once the status endpoint's budget is half used, each job's polls are spaced
  so that all jobs together stay within it (``rpm`` per ``window``).
- Cadences count from when the previous poll was sent, so polls ``min_interval`` apart are
  that far apart however long Bria takes to answer.

A training is looked at every ``poll_every`` for its hours, and sooner as its expected end
approaches, learned from earlier trainings in the same state (``training_wait``).

Clock-free: the caller gives elapsed times, so the rules are unit-tested without sleeping.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence

STATUS_ENDPOINT = "GET /v2/status/{id}"
QUANTILE = 0.8  # of the durations still possible: found done at the first poll ~80 % of the time
STRETCH = 15  # an old job's polls are never further apart than this many cadences (30 s)
EARLIER = 32  # durations of earlier runs' jobs the pacer starts with (this run's displace them)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class JobSchedule:
    """One job's polls: ask ``first()`` before the first poll, ``after_miss(elapsed, took)``
    after each poll that found it in progress; ``estimate(took)`` is what it teaches the
    pacer."""

    def __init__(self, pacer: JobPacer, is_probe: bool) -> None:
        self.pacer, self.is_probe = pacer, is_probe
        self.last_miss: float | None = None
        self.polls = 0

    def first(self, elapsed: float) -> float:
        """Seconds until the first poll, ``elapsed`` seconds after the submission."""
        if self.is_probe:
            return max(0.0, self.pacer.min_interval - elapsed)
        due = self.pacer.due(elapsed)
        return 0.0 if due is None else max(0.0, due - elapsed)  # None: likely done, look now

    def after_miss(self, elapsed: float, took: float = 0.0) -> float:
        """Seconds until the next poll; the one that just answered, ``elapsed`` seconds after
        the submission, found the job in progress and was sent ``took`` seconds ago."""
        self.polls += 1
        self.last_miss = elapsed
        pacer = self.pacer

        def since_sent(gap: float) -> float:
            return max(0.0, gap - took)

        if self.is_probe:
            wait = since_sent(pacer.stretched(elapsed / 8))
        else:
            due = pacer.due(elapsed)
            wait = since_sent(pacer.stretched(elapsed / 4)) if due is None else max(
                since_sent(pacer.min_interval), due - elapsed)
        return max(wait, pacer.share())

    def estimate(self, took: float) -> float:
        return took if self.last_miss is None else (self.last_miss + took) / 2


class JobPacer:
    """The polls of one kind of job (generations, or structured prompts) in one run;
    ``earlier``: the durations earlier runs learned for this kind, oldest first."""

    def __init__(self, min_interval: float, rpm: int | None, window: float,
                 usage: Callable[[], float] = lambda: 1.0, earlier: Sequence[float] = ()) -> None:
        self.min_interval = min_interval
        self.per_second = (rpm / window) if rpm else None
        self.usage = usage
        self._cond = threading.Condition()
        self._in_flight = 0
        self._is_probing = False
        self._durations: deque[float] = deque(list(earlier)[-EARLIER:], maxlen=64)
        self.polls = 0  # every poll of every job, for the run's figures
        self.jobs = 0

    def start(self, stop: threading.Event) -> JobSchedule:
        """Register a job in flight; the probe goes at once, the others wait for a duration."""
        with self._cond:
            self._in_flight += 1
            while not self._durations and not stop.is_set():
                if not self._is_probing:
                    self._is_probing = True
                    return JobSchedule(self, True)
                self._cond.wait(timeout=max(0.05, self.min_interval))  # the probe will notify
            return JobSchedule(self, False)

    def finish(self, schedule: JobSchedule, took: float | None) -> float | None:
        """The job ended (``took``: seconds to the poll that found it done; None: it did not).
        What it taught: its learned duration, if any."""
        learned = None if took is None else schedule.estimate(took)
        with self._cond:
            self._in_flight = max(0, self._in_flight - 1)
            if learned is not None:
                self._durations.append(learned)
                self.polls += schedule.polls + 1
                self.jobs += 1
            if schedule.is_probe:
                self._is_probing = False
            self._cond.notify_all()
        return learned

    def due(self, elapsed: float) -> float | None:
        """When (seconds after its submission) a job not done at ``elapsed`` is expected to
        be: the ``QUANTILE`` of the learned durations longer than ``elapsed``; None when it is
        older than every one of them."""
        with self._cond:
            longer = [d for d in self._durations if d > elapsed]
        return quantile(longer, QUANTILE) if longer else None

    def stretched(self, gap: float) -> float:
        """A gap that grows with a job's age, within [min_interval, STRETCH x min_interval]."""
        return max(self.min_interval, min(gap, STRETCH * self.min_interval))

    def share(self) -> float:
        """Between polls of one job: all jobs in flight together stay within the budget."""
        if self.per_second is None or self.usage() < 0.5:
            return 0.0
        with self._cond:
            return self._in_flight / self.per_second


# --- training -----------------------------------------------------------------------------

NEAR_END = 0.02  # near its expected end, a training is looked at every 2 % of its duration
EARLY = 0.95  # the earliest plausible end: this much of the shortest earlier training


def training_wait(elapsed: float, earlier: list[float], every: float, least: float) -> float:
    """Seconds until the next look at a training that has run ``elapsed`` seconds.

    Without earlier trainings (``earlier``: their durations in this state), ``every`` (the
    file's ``poll_every``). With them: ``every`` while the earliest plausible end
    (``EARLY`` x the shortest) is further away, landing a poll on it; from there until the
    longest earlier duration, every ``NEAR_END`` of the typical (median) duration; past the
    longest, a quarter of the overrun, so a training that runs long is polled less and less
    often. Never more than ``every``, never less than ``least`` (the job cadence)."""
    if not earlier:
        return every
    opens, closes = EARLY * min(earlier), max(earlier)
    if elapsed < opens:
        return max(least, min(every, opens - elapsed))
    near = NEAR_END * quantile(earlier, 0.5)
    if elapsed <= closes:
        return max(least, min(every, near))
    return max(least, min(every, max(near, (elapsed - closes) / 4)))
