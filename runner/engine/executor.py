"""Executes a plan: the training chain in order (uploads concurrently), then every scene
variation concurrently under the client's rate limiter.

Each step is begun (a committed row), run by its step function, and finished (remote id
and outputs committed). A failed training step stops the run; a failed scene does not
stop the others, and the run ends listing the failed scenes. Any other exception in a step,
whatever raised it (an AssertionError, a full disk, a database error), fails that step and
stops the run like a Ctrl-C would, then ends it with that error (``StepCrashed``,
``DiskFull``): no worker dies unnoticed. A Ctrl-C (``ctx.stop``) starts no new work, lets
in-flight requests finish for a few seconds, and raises ``Interrupted``; everything finished
is recorded, so the next run continues.
"""

from __future__ import annotations

import contextlib
import errno
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from runner.engine.context import Context
from runner.engine.flow import Flow, FlowControl, readings_since
from runner.engine.gone import explain
from runner.engine.planned import TRAINING_KINDS, Action, PlannedStep
from runner.engine.steps import STEPS, StepSpec, artifact_of
from runner.errors import BriaRunError, DiskFull, Interrupted, RunFailed, StaleModel, StepCrashed
from runner.events import EventKind
from runner.state.rows import StepKind, StepRow

# The phases of a run, in order: (name, the step kinds it runs, whether it reports a total).
PHASES: tuple[tuple[str, tuple[StepKind, ...], bool], ...] = (
    ("training", TRAINING_KINDS, False),
    ("generation", (StepKind.SCENE,), True),
)


@dataclass
class Summary:
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    images: int = 0
    gallery: str | None = None  # the page refreshed at the end of the run, if any
    outputs: str | None = None  # the outputs folder: where the images are


class Engine:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.summary = Summary()
        self.abandoned = 0  # workers still in flight when the grace period after a stop ran out
        self.peaks: dict[str, int] = {}  # most workers busy at once, per concurrent step kind

    def run(self) -> Summary:
        try:
            return self._run()
        except Interrupted as exc:
            if exc.resume:
                exc.abandoned_workers = self.abandoned
                raise
            # Ctrl-C cut a back-off short inside the client or a POST's outage wait, which know
            # no command: said here like every other interrupt, with the command to resume.
            self.ctx.emit(EventKind.INTERRUPTED, log=True)
            resumable = Interrupted(self.ctx.options.resume_command)
            resumable.abandoned_workers = self.abandoned
            raise resumable from exc
        except BriaRunError as exc:
            exc.abandoned_workers = self.abandoned
            raise
        except Exception as exc:  # outside any step: still one clear error
            error = failure_of("the run", exc)
            error.abandoned_workers = self.abandoned
            raise error from exc

    def _run(self) -> Summary:
        plan = self.ctx.plan
        if plan.blocked:
            raise StaleModel(list(plan.blocked))
        self._adopt_recorded_ids()
        for name, kinds, has_total in PHASES:
            self._run_phase(name, [s for s in plan.steps if s.kind in kinds and s.is_work],
                            has_total)
            self._check_stop()
        if self.summary.failed:
            raise RunFailed(self.summary.failed, self.ctx.options.resume_command)
        self.ctx.emit(EventKind.FINISHED, images=self.summary.images, log=True)
        return self.summary

    def _adopt_recorded_ids(self) -> None:
        model_id = self.ctx.pipeline.training.model_id
        if model_id is not None:
            self.ctx.ids["model"] = model_id
        for step in self.ctx.plan.steps:
            if STEPS[step.kind].names_resource and not step.is_work and step.remote_id:
                self.ctx.ids[step.kind] = int(step.remote_id)
            if step.revived and step.kind in TRAINING_KINDS:
                # An edit undone: the earlier rows are the ones in use again, said before any
                # image is made, so status, outputs and the gallery name the model really used.
                self.ctx.store.begin_step(step.key, step.kind, step.fingerprint)
                if step.kind == StepKind.TRAIN:
                    self.ctx.emit(EventKind.NOTICE, step.key, log=True,
                                  message=f"switching back to an earlier model: {step.reason}")

    def _check_stop(self) -> None:
        if self.ctx.stop.is_set():
            self.ctx.emit(EventKind.INTERRUPTED, log=True)
            raise Interrupted(self.ctx.options.resume_command)

    def _run_phase(self, name: str, work: list[PlannedStep], has_total: bool) -> None:
        """Steps in plan order; a concurrent kind's steps all run when its first is reached."""
        if not work:
            return
        if has_total:
            self.ctx.emit(EventKind.PHASE, name=name, total=len(work))
        else:
            self.ctx.emit(EventKind.PHASE, name=name)
        begun: set[StepKind] = set()
        for step in work:
            self._check_stop()
            spec = STEPS[step.kind]
            if not spec.is_concurrent:
                self._execute(step, spec)
            elif step.kind not in begun:
                begun.add(step.kind)
                self._run_concurrently([s for s in work if s.kind == step.kind], spec)

    def _run_concurrently(self, steps: list[PlannedStep], spec: StepSpec) -> None:
        """Workers pull steps from one queue (no per-step futures to scan); the flow control
        says how many of them may be busy at once."""
        queue, errors = deque(steps), list[BriaRunError]()
        flow = self._flow()

        def worker() -> None:
            while not self.ctx.stop.is_set():
                try:
                    step = queue.popleft()
                except IndexError:
                    return
                if not flow.enter(self.ctx.stop):
                    return
                own = self._own_time()
                try:
                    error = self._guarded(step, spec)
                    if error is not None and (spec.is_fatal or error.stops_run):
                        errors.append(error)
                        self.ctx.stop.set()  # no new work; the requests in flight finish
                        return
                finally:
                    flow.leave(own())  # after the stop: no other worker slips through first

        count = min(flow.control.ceiling, len(steps))
        # Daemon threads: after Ctrl-C and the grace period, exiting must not wait for them.
        workers = [threading.Thread(target=worker, name=f"bria-run-{n}", daemon=True)
                   for n in range(count)]
        for thread in workers:
            thread.start()
        self.abandoned = self._join(workers)
        self.peaks[steps[0].kind] = flow.peak
        if self.abandoned:
            self.ctx.emit(EventKind.NOTICE, message=(
                f"{self.abandoned} request(s) still in flight after the "
                f"{self.ctx.options.grace:g} s grace period were left; their intents are "
                "recorded and the next run reconciles them"))
        if errors:
            raise errors[0]

    def _flow(self) -> Flow:
        """A phase's flow control, fed by the client's figures since the phase began."""
        limiter, ctx = self.ctx.client.limiter, self.ctx
        control = FlowControl(ctx.pipeline.concurrency, limiter.rpm, limiter.window,
                              clock=ctx.clock)
        before = ctx.client.stats()
        return Flow(control, lambda: readings_since(before, ctx.client.stats(),
                                                     limiter.stats().keys()))

    def _own_time(self) -> Callable[[], float]:
        """A stopwatch of the calling thread's time without waits for rate-limit slots."""
        client, began = self.ctx.client, self.ctx.clock()
        waited = client.waited_here()
        return lambda: self.ctx.clock() - began - (client.waited_here() - waited)

    def _join(self, workers: list[threading.Thread]) -> int:
        """Wait for the workers; after a stop, for at most the grace period. How many are left."""
        deadline: float | None = None
        while alive := [t for t in workers if t.is_alive()]:
            if self.ctx.stop.is_set() and deadline is None:
                deadline = time.monotonic() + self.ctx.options.grace
            if deadline is not None and time.monotonic() > deadline:
                return len(alive)
            alive[0].join(timeout=0.2)
        return 0

    def _guarded(self, step: PlannedStep, spec: StepSpec) -> BriaRunError | None:
        if self.ctx.stop.is_set():
            return None
        try:
            self._execute(step, spec)
        except Interrupted:
            return None
        except BriaRunError as exc:
            self.summary.failed[step.key] = str(exc)
            return exc
        return None

    # --- one step -----------------------------------------------------------------------

    def _execute(self, step: PlannedStep, spec: StepSpec) -> None:
        """Run one step; whatever it raises fails it (recorded) and comes out as a
        BriaRunError, so no exception leaves a step, or a worker, unnoticed."""
        row: StepRow | None = None
        try:
            if spec.before is not None:
                spec.before(self.ctx, step)
            row = self.ctx.store.begin_step(step.key, step.kind, step.fingerprint,
                                            is_new=step.action == Action.CREATE)
            self.ctx.emit(EventKind.STEP, step.key, kind=step.kind, state="started",
                          action=step.action)
            self._run_step(step, spec, row)
        except Interrupted:
            raise  # not a failure: the step stays open and the next run continues it
        except Exception as exc:  # every failure is reported, none is lost
            error = explain(self.ctx, failure_of(step.key, exc))
            self._fail(step, row, error)
            if error is exc:
                raise
            raise error from exc

    def _run_step(self, step: PlannedStep, spec: StepSpec, row: StepRow) -> None:
        ctx = self.ctx
        remote_id, outputs = spec.run(ctx, step, row)
        if outputs.get("detached"):
            return  # Ctrl-C while waiting for training: nothing to finish, nothing lost
        artifact = artifact_of(step, remote_id, outputs) if spec.makes_image else None
        ctx.store.finish_step(row.id, remote_id=remote_id, outputs={**outputs, "inputs": step.inputs},
                              artifact=artifact)
        if spec.names_resource and remote_id is not None:
            ctx.ids[step.kind] = int(remote_id)
        if spec.makes_image and not outputs.get("recognised"):
            self.summary.images += 1
        self.summary.done.append(step.key)
        ctx.emit(EventKind.STEP, step.key, kind=step.kind, state="done", remote_id=remote_id,
                 path=outputs.get("path"))

    def _fail(self, step: PlannedStep, row: StepRow | None, exc: BriaRunError) -> None:
        # The state itself may be what failed (a full disk): then the step stays open, which
        # the next run resumes, and ``exc`` is still what the run ends with.
        with contextlib.suppress(Exception):
            if row is not None:
                self.ctx.store.fail_step(row.id, str(exc))
            self.ctx.emit(EventKind.STEP, step.key, kind=step.kind, state="failed",
                          error=str(exc), log=True)


def failure_of(where: str, exc: Exception) -> BriaRunError:
    """The error a user sees for ``exc``: bria-run's own as it is, a full disk as such, any
    other exception as a crash of the step ``where``."""
    if isinstance(exc, BriaRunError):
        return exc
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return DiskFull(str(exc.filename or "a file"))
    return StepCrashed(where, exc)
