"""Executes a plan: the training chain in order (uploads concurrently), then every scene
variation concurrently under the client's rate limiter.

Each step is begun (a committed row), run by its step function, and finished (remote id
and outputs committed). A failed training step stops the run; a failed scene does not
stop the others, and the run ends listing the failed scenes. A Ctrl-C (``ctx.stop``)
starts no new work, lets in-flight requests finish for a few seconds, and raises
``Interrupted``; everything finished is recorded, so the next run continues.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runner.engine.context import Context
from runner.engine.plan import PlannedStep
from runner.engine.scene import do_scene
from runner.engine.training import STEP_FUNCTIONS
from runner.errors import BriaRunError, Interrupted, RunFailed, StaleModel
from runner.state.store import StepRow

StepFunction = Callable[[Context, PlannedStep, StepRow], tuple[str | None, dict[str, Any]]]
ID_KINDS = ("project", "dataset", "model")


@dataclass
class Summary:
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    images: int = 0
    gallery: str | None = None  # the page refreshed at the end of the run, if any


class Engine:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.summary = Summary()

    def run(self) -> Summary:
        plan = self.ctx.plan
        if plan.blocked:
            raise StaleModel(list(plan.blocked))
        self._adopt_recorded_ids()
        self._run_training()
        self._check_stop()
        self._run_scenes()
        self._check_stop()
        if self.summary.failed:
            raise RunFailed(self.summary.failed, self.ctx.options.resume_command)
        self.ctx.emit("finished", images=self.summary.images, log=True)
        return self.summary

    def _adopt_recorded_ids(self) -> None:
        model_id = self.ctx.pipeline.training.model_id
        if model_id is not None:
            self.ctx.ids["model"] = model_id
        for step in self.ctx.plan.steps:
            if step.kind in ID_KINDS and step.action in ("done", "kept") and step.remote_id:
                self.ctx.ids[step.kind] = int(step.remote_id)

    def _check_stop(self) -> None:
        if self.ctx.stop.is_set():
            self.ctx.emit("interrupted", log=True)
            raise Interrupted(self.ctx.options.resume_command)

    # --- training -----------------------------------------------------------------------

    def _run_training(self) -> None:
        work = [s for s in self.ctx.plan.steps if s.kind in STEP_FUNCTIONS and s.is_work]
        if not work:
            return
        self.ctx.emit("phase", name="training")
        uploads = [s for s in work if s.kind == "upload"]
        for step in work:
            self._check_stop()
            if step.kind == "upload":
                if step is uploads[0]:
                    self._run_concurrently(uploads, STEP_FUNCTIONS["upload"], fatal=True)
                continue
            if step.kind == "model":
                # A --retrain after a failed training bumps the epoch: remember it for good.
                self.ctx.store.set_meta("model_epoch", str(step.inputs["epoch"]))
            self._execute(step, STEP_FUNCTIONS[step.kind])

    # --- generation ---------------------------------------------------------------------

    def _run_scenes(self) -> None:
        work = [s for s in self.ctx.plan.steps if s.kind == "scene" and s.is_work]
        if not work:
            return
        self.ctx.emit("phase", name="generation", total=len(work))
        self._run_concurrently(work, do_scene, fatal=False)

    def _run_concurrently(self, steps: list[PlannedStep], fn: StepFunction, *, fatal: bool) -> None:
        """A fixed set of workers pulls steps from one queue (no per-step futures to scan)."""
        queue, errors = deque(steps), list[BriaRunError]()

        def worker() -> None:
            while not self.ctx.stop.is_set():
                try:
                    step = queue.popleft()
                except IndexError:
                    return
                error = self._guarded(step, fn)
                if error is not None and fatal:
                    errors.append(error)
                    self.ctx.stop.set()  # no new uploads; the ones in flight finish
                    return

        count = min(self.ctx.pipeline.concurrency, len(steps))
        # Daemon threads: after Ctrl-C and the grace period, exiting must not wait for them.
        workers = [threading.Thread(target=worker, name=f"bria-run-{n}", daemon=True)
                   for n in range(count)]
        for thread in workers:
            thread.start()
        self._join(workers)
        if errors:
            raise errors[0]

    def _join(self, workers: list[threading.Thread]) -> None:
        """Wait for the workers; after a Ctrl-C, for at most the grace period."""
        deadline: float | None = None
        while alive := [t for t in workers if t.is_alive()]:
            if self.ctx.stop.is_set() and deadline is None:
                deadline = time.monotonic() + self.ctx.options.grace
            if deadline is not None and time.monotonic() > deadline:
                return
            alive[0].join(timeout=0.2)

    def _guarded(self, step: PlannedStep, fn: StepFunction) -> BriaRunError | None:
        if self.ctx.stop.is_set():
            return None
        try:
            self._execute(step, fn)
        except Interrupted:
            return None
        except BriaRunError as exc:
            self.summary.failed[step.key] = str(exc)
            return exc
        return None

    # --- one step -----------------------------------------------------------------------

    def _execute(self, step: PlannedStep, fn: StepFunction) -> None:
        ctx = self.ctx
        row = ctx.store.begin_step(step.key, step.kind, step.fingerprint,
                                   is_new=step.action == "create")
        ctx.emit("step", step.key, kind=step.kind, state="started", action=step.action)
        try:
            remote_id, outputs = fn(ctx, step, row)
        except Interrupted:
            raise  # not a failure: the step stays open and the next run continues it
        except BriaRunError as exc:
            self._fail(step, row, exc)
            raise
        if outputs.get("detached"):
            return  # Ctrl-C while waiting for training: nothing to finish, nothing lost
        artifact = _artifact(step, remote_id, outputs) if step.kind == "scene" else None
        ctx.store.finish_step(row.id, remote_id=remote_id, outputs={**outputs, "inputs": step.inputs},
                              artifact=artifact)
        if step.kind in ID_KINDS and remote_id is not None:
            ctx.ids[step.kind] = int(remote_id)
        if step.kind == "scene":
            self.summary.images += 1
        self.summary.done.append(step.key)
        ctx.emit("step", step.key, kind=step.kind, state="done", remote_id=remote_id,
                 path=outputs.get("path"))

    def _fail(self, step: PlannedStep, row: StepRow, exc: BriaRunError) -> None:
        self.ctx.store.fail_step(row.id, str(exc))
        self.ctx.emit("step", step.key, kind=step.kind, state="failed", error=str(exc), log=True)


def _artifact(step: PlannedStep, source: str | None, outputs: dict[str, Any]) -> dict[str, Any]:
    return {"scene": step.scene, "variation": step.variation or 1, "path": outputs["path"],
            "sha256": outputs["sha256"], "seed": outputs.get("seed"), "source": source,
            "bytes": outputs.get("bytes")}
