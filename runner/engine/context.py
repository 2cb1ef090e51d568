"""What every step function is given (the pipeline, its plan, the injected collaborators) and
what it gives back: ``StepFunction``, the one type of every step kind's function."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.engine.crashpoints import CrashPoints
from runner.engine.pacing import STATUS_ENDPOINT, JobPacer
from runner.engine.planned import Plan, PlannedStep
from runner.engine.remote import Answer, Remote
from runner.events import EventKind, Reporter
from runner.pipeline.spec import Pipeline
from runner.state.rows import StepRow
from runner.state.store import Store

if TYPE_CHECKING:
    from runner.bria.client import BriaClient


# Requests that watch work running at Bria: an outage only delays learning how it went.
_WATCHES = {"GET /v1/tailored-gen/models/{id}": "training", "GET /v2/status/{id}": "generation"}


def unaffected(endpoint: str) -> str | None:
    """What keeps running at Bria while ``endpoint`` gets no answer, if anything."""
    return _WATCHES.get(endpoint)


# What a step function returns: the remote id it produced (or None) and outputs to record.
Outcome = tuple[str | None, dict[str, Any]]
StepFunction = Callable[["Context", PlannedStep, StepRow], Outcome]


@dataclass(frozen=True)
class RunOptions:
    retrain: bool = False
    keep_model: bool = False
    restore: bool = False  # output files altered since they were recorded are restored too
    poll_every: float | None = None  # overrides training.poll_every (the simulator trains fast)
    job_poll: float = 2.0  # Bria's status cadence is 1-3 s
    grace: float = 5.0  # seconds in-flight requests may finish after the first Ctrl-C
    job_timeout: float = 1800.0  # a generation still in progress after this fails its scene
    # How long Bria may be unreachable (no answer, 5xx, 429) before the run stops, resumable:
    # meanwhile requests are retried, at most 5 minutes apart. A training goes on regardless.
    outage_tolerance: float = 1800.0
    resume_command: str = ""


@dataclass
class Context:
    pipeline: Pipeline
    plan: Plan
    store: Store
    client: BriaClient
    reporter: Reporter
    options: RunOptions = RunOptions()
    hooks: CrashPoints = field(default_factory=CrashPoints)
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time  # for times a later run reads back (training start)
    rand: Callable[[], float] = random.random
    ids: dict[str, int] = field(default_factory=dict)  # project, dataset, model
    hashes: dict[Path, str] = field(default_factory=dict)  # sha256 of every input image
    pause: Callable[[float], None] | None = None  # tests inject a sleep that takes no time
    adopted: set[str] = field(default_factory=set)  # step kinds found at Bria by name this run
    created: set[str] = field(default_factory=set)  # step kinds sent (created) this run
    verified: set[int] = field(default_factory=set)  # datasets this run checked, then completed
    early_identity: Future[Answer] | None = None  # training.identity_early
    listings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # asked once a run
    pacer: JobPacer = field(init=False)  # generations (started from earlier runs' durations)
    prompt_pacer: JobPacer = field(init=False)  # structured prompts (another kind of job)
    resent: set[tuple[int, str]] = field(default_factory=set)  # see Remote.resent

    def __post_init__(self) -> None:
        limiter = self.client.limiter
        def usage() -> float:
            return limiter.usage(STATUS_ENDPOINT)

        self.pacer = JobPacer(self.options.job_poll, limiter.rpm, limiter.window, usage,
                              self.plan.job_seconds)
        self.prompt_pacer = JobPacer(self.options.job_poll, limiter.rpm, limiter.window, usage)

    @property
    def remote(self) -> Remote:
        return Remote(self.store, self.hooks, self.stop, self.wait, self.clock,
                      self.options.outage_tolerance, self.resent, self.outage,
                      self.client.backoff)

    def outage(self, endpoint: str, seconds: float) -> None:
        """Bria has not answered for ``seconds``: say so, and what goes on regardless."""
        self.emit(EventKind.OUTAGE, endpoint=endpoint, seconds=seconds,
                  running=unaffected(endpoint))

    def wait(self, seconds: float) -> None:
        """Sleep that a Ctrl-C cuts short."""
        if self.pause is not None:
            self.pause(seconds)
            return
        self.stop.wait(max(0.0, seconds))

    def emit(self, event: EventKind, key: str | None = None, *, log: bool = False, **data: Any) -> None:
        """Tell the user (reporter) and, for what matters later, the event log."""
        self.reporter.emit(event, key=key, **data)
        if log:
            self.store.log(event, key, **data)
