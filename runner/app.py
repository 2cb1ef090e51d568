"""The library's front door: what `bria-run run/plan/status/outputs` do, without click.

A run: load and validate the file (nothing remote before it passes), open the API (Bria, or
the built-in simulator), open the state and take its lock, hash the inputs, plan, execute.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.apis import Api, open_api, rate_window, world_path
from runner.budgets import Budgets
from runner.engine.context import Context, RunOptions
from runner.engine.executor import Engine, Summary
from runner.engine.plan import KEPT_FOR, plan
from runner.engine.planned import Plan
from runner.errors import (
    BriaRunError,
    Interrupted,
    LeaseLost,
    LockHeld,
    Problem,
    StaleModel,
    StateError,
    StateMissing,
    StepCrashed,
)
from runner.events import EventKind, Reporter
from runner.pipeline.loader import load_pipeline
from runner.pipeline.places import default_state_folder, document_cache, project_root
from runner.pipeline.spec import Pipeline
from runner.state.rows import PipelineKey, Recorded
from runner.state.store import Store

if TYPE_CHECKING:
    from runner.state.lock import Holder

STATE_ENV = "BRIA_RUN_STATE"


@dataclass(frozen=True)
class Target:
    """Where a command works: the pipeline file, the state, and which API."""

    path: Path
    state: str | None = None
    simulate: bool = False


def state_location(pipeline: Pipeline, target: Target) -> str:
    """``--state``, else ``$BRIA_RUN_STATE`` (a file, a folder or a URL), else
    ``<project root>/state/<name>.sqlite`` (``.sim.sqlite`` for the simulator): found from the
    pipeline file, never from the current folder (``runner.pipeline.places``)."""
    suffix = ".sim.sqlite" if target.simulate else ".sqlite"
    chosen = target.state or os.environ.get(STATE_ENV)
    if chosen and ("://" in chosen or not Path(chosen).is_dir()):
        return chosen
    folder = Path(chosen) if chosen else default_state_folder(pipeline.path)
    return str(folder / f"{pipeline.name}{suffix}")


def pipeline_key(pipeline: Pipeline) -> PipelineKey:
    """The pipeline's identity in a database of many: its name and its file's path inside
    its project, the same on every checkout."""
    path = pipeline.path.resolve()
    return PipelineKey(pipeline.name, path.relative_to(project_root(path)).as_posix())


def run(
    target: Target, options: RunOptions, reporter: Reporter, *, command: str, rpm: int | None = 60,
    wait_lock: float = 0.0, budgets: Budgets | None = None, stop: threading.Event | None = None,
) -> Summary:
    """Run one pipeline; ``wait_lock``: seconds to wait for another runner's live lease;
    ``budgets``: the request budgets shared with the command's other pipelines; ``stop``:
    set to stop this pipeline (as Ctrl-C would)."""
    pipeline, warnings = load_pipeline(target.path, cache=document_cache(target.path))
    for warning in warnings:
        reporter.emit(EventKind.NOTICE, message=str(warning))
    location = state_location(pipeline, target)
    stop = stop or threading.Event()
    if budgets is not None:
        return _run_file(pipeline, location, target, options, reporter, command, wait_lock,
                         budgets, stop)
    own = Budgets(location, rpm, rate_window())
    try:
        return _run_file(pipeline, location, target, options, reporter, command, wait_lock, own,
                         stop)
    finally:
        own.close()


def _run_file(pipeline: Pipeline, location: str, target: Target, options: RunOptions,
              reporter: Reporter, command: str, wait_lock: float, budgets: Budgets,
              stop: threading.Event) -> Summary:
    from runner.state.lock import RunLock

    def lease_lost() -> None:
        stop.set()
        reporter.emit(EventKind.NOTICE, message="another runner took this pipeline's lease "
                                                "over: stopping, writing nothing more")

    try:
        with open_api(world_path(location, pipeline), target.simulate, budgets, reporter,
                      outage_tolerance=options.outage_tolerance, interrupt=stop) as api, \
                Store.open(location, api.identity, pipeline=pipeline_key(pipeline)) as store, \
                RunLock(store, command, on_break=lambda holder: _lock_broken(reporter, holder),
                        on_lost=lease_lost, wait=wait_lock) as lease:
            try:
                return _run_locked(pipeline, store, api, options, reporter, stop)
            except StepCrashed as exc:
                _keep_traceback(exc, location, pipeline, command)
                raise
            except BriaRunError as exc:
                if lease.lost.is_set() and not isinstance(exc, LeaseLost):
                    raise LeaseLost(store.location, "by another runner") from exc
                raise
    except LockHeld as exc:
        if options.resume_command.startswith("bria-run "):  # a hint to paste as it is
            exc.unlock = "bria-run unlock " + options.resume_command[len("bria-run "):]
        raise


def _run_locked(pipeline: Pipeline, store: Store, api: Api, options: RunOptions,
                reporter: Reporter, stop: threading.Event) -> Summary:
    from runner.engine.interrupts import graceful_interrupts

    hashes = dict(pipeline.image_hashes)
    the_plan = plan_from_state(pipeline, store, hashes, retrain=options.retrain,
                               keep_model=options.keep_model, restore=options.restore)
    if the_plan.blocked:  # refused before a cost is announced
        raise StaleModel(list(the_plan.blocked))
    if the_plan.kept_for is not None:
        _remember_keep(store, the_plan.kept_for, options.keep_model, reporter)
    work = [s for s in the_plan.steps if s.is_work]
    reporter.emit(EventKind.PLAN, text=plan_summary(the_plan), credits=the_plan.credits,
                  uploads=sum(1 for s in work if s.kind == "upload"),
                  scenes=[s.key for s in work if s.kind == "scene"])
    _note(store, phase="starting" if the_plan.has_work else "done",
          scenes_total=str(sum(1 for s in the_plan.steps if s.kind == "scene")),
          prices=f"{pipeline.prices.training:g} {pipeline.prices.image:g}")
    if not the_plan.has_work:
        reporter.emit(EventKind.FINISHED, images=0)
        return Summary(outputs=str(pipeline.outputs))  # unchanged, finished: not one request
    watch = _OutputWatch(reporter, store)
    ctx = Context(pipeline, the_plan, store, api.client, watch, options, hashes=hashes,
                  stop=stop)
    outcome = "failed"
    try:
        with graceful_interrupts(ctx.stop, reporter):
            summary = Engine(ctx).run()
        outcome = "done"
    except Interrupted:
        outcome = "interrupted"
        raise
    finally:
        _note(store, phase=outcome)
        page = _refresh_gallery(pipeline, the_plan, store, options, reporter, outcome) \
            if watch.changed else None
    summary.gallery = str(page) if page else None
    summary.outputs = str(pipeline.outputs)
    return summary


def _keep_traceback(exc: StepCrashed, location: str, pipeline: Pipeline, command: str) -> None:
    """The traceback goes to a log beside the state; the error's message names that file."""
    from runner.crashlog import keep_traceback, log_path

    path = log_path(location, default_state_folder(pipeline.path), pipeline.name)
    kept = keep_traceback(exc.cause, path, command)
    exc.log = str(kept) if kept else None


class _OutputWatch:
    """Passes every event on to the reporter, noting whether an image was written or moved
    (then the run refreshes the gallery)."""

    def __init__(self, reporter: Reporter, store: Store | None = None) -> None:
        self.reporter, self.store = reporter, store
        self.changed = False

    def emit(self, event: EventKind, key: str | None = None, **data: Any) -> None:
        if event == EventKind.PHASE and self.store is not None:
            _note(self.store, phase=str(data.get("name")))
        if event == EventKind.MOVED or (event == EventKind.STEP and data.get("state") == "done"
                                        and data.get("path")):
            self.changed = True
        self.reporter.emit(event, key, **data)

    def close(self) -> None:
        self.reporter.close()


def _note(store: Store, **values: str) -> None:
    """Progress for the studio view (`status --all`), in the state's meta. Never the run's
    failure: a fenced runner cannot write it, and must not stop on it."""
    try:
        for key, value in values.items():
            store.set_meta(f"run_{key}", value)
    except StateError:
        pass


def _refresh_gallery(pipeline: Pipeline, the_plan: Plan, store: Store, options: RunOptions,
                     reporter: Reporter, outcome: str) -> Path | None:
    """Rewrite ``<outputs>/index.html`` from the state as it is now. A page that cannot be
    written is a notice, never the run's failure: the images and the state are what count."""
    from runner.display.gallery import write_gallery

    try:
        page = write_gallery(pipeline, the_plan, store.load(), retry=options.resume_command)
    except (OSError, ValueError) as exc:
        reporter.emit(EventKind.NOTICE, message=f"could not write the gallery under "
                                                 f"{pipeline.outputs}: {exc}")
        return None
    reporter.emit(EventKind.GALLERY, path=str(page), outcome=outcome)
    return page


def write_gallery_page(target: Target, retry: str) -> Path:
    """`bria-run gallery`: the page of what the state records now. Sends nothing and takes
    no lock (it writes only the page, index.json and thumbnails)."""
    from runner.display.gallery import write_gallery

    with open_recorded(target) as (pipeline, _store, recorded, _location):
        the_plan = plan(pipeline, recorded, pipeline.image_hashes)
        if the_plan.blocked:  # a stale model: the images that exist are the old model's
            the_plan = plan(pipeline, recorded, pipeline.image_hashes, keep_model=True)
        return write_gallery(pipeline, the_plan, recorded, retry=retry)


def plan_from_state(
    pipeline: Pipeline, store: Store, hashes: dict[Path, str], **flags: bool
) -> Plan:
    """Plan from the rows in use now and the output files as they are; only when an input
    changed, look in the history for a step already done with the new inputs (an edit undone)
    and plan again with it."""
    from runner.engine.outputs import output_facts

    recorded = store.load(with_artifacts=False, current_only=True)
    files = output_facts(store.current_outputs())
    the_plan = plan(pipeline, recorded, hashes, files=files, **flags)
    changed = [(s.key, s.fingerprint) for s in the_plan.steps if s.action == "changed"]
    if changed:
        store.add_rows_for(recorded, changed)
        the_plan = plan(pipeline, recorded, hashes, files=files, **flags)
    return the_plan


def _remember_keep(store: Store, kept_for: str, asked: bool, reporter: Reporter) -> None:
    """``--keep-model`` holds for these training inputs until they change again."""
    if asked:
        store.set_meta(KEPT_FOR, kept_for)
        text = ("--keep-model is remembered: later runs keep this model until the training "
                "inputs change again (--retrain trains a new one)")
    else:
        text = ("keeping the earlier model, as --keep-model chose for these training inputs "
                "(--retrain trains a new one)")
    reporter.emit(EventKind.NOTICE, message=text)


def _lock_broken(reporter: Reporter, holder: Holder) -> None:
    reporter.emit(EventKind.NOTICE, message=(
        f"took over the lock of a bria-run that is gone (pid {holder.pid} on {holder.host}, "
        f"`{holder.command}` since {holder.since()})"))


def plan_summary(the_plan: Plan) -> str:
    work = [s for s in the_plan.steps if s.is_work]
    if not work and not the_plan.blocked:
        return "plan: nothing to do; every step is done"
    images = sum(1 for s in work if s.kind == "scene")
    training = any(s.kind == "train" for s in work)
    parts = [f"{len(work)} step(s) to run", f"{images} image(s)"]
    if training:
        parts.append("training")
    return f"plan: {', '.join(parts)}; about {the_plan.credits:g} credits"


@contextmanager
def open_recorded(
    target: Target, warnings: list[Problem] | None = None
) -> Iterator[tuple[Pipeline, Store | None, Recorded, str]]:
    """For read-only commands: the pipeline, its state (None if nothing ran yet), what it
    records, and the state's location. Touches no API. The file's warnings are added to
    ``warnings`` when given."""
    pipeline, found = load_pipeline(target.path)
    if warnings is not None:
        warnings.extend(found)
    location = state_location(pipeline, target)
    try:
        store = Store.open(location, None, create=False, pipeline=pipeline_key(pipeline))
    except StateMissing:
        yield pipeline, None, Recorded(), location
        return
    with store:
        yield pipeline, store, store.load(), store.location


@dataclass(frozen=True)
class Snapshot:
    """What `plan`, `status` and `outputs` show: the plan, the state, its live lock holder."""

    plan: Plan
    recorded: Recorded
    location: str
    lock: dict[str, object] | None
    warnings: tuple[Problem, ...] = ()  # the pipeline file's (e.g. a retired legacy model)


def snapshot(target: Target, *, retrain: bool = False, keep_model: bool = False,
             restore: bool = False) -> Snapshot:
    """Read the state and the output files and plan against them; sends nothing, writes
    nothing."""
    from runner.display.render import PAID_OPS
    from runner.engine.outputs import output_facts
    from runner.state.lock import live_holder

    warnings: list[Problem] = []
    with open_recorded(target, warnings) as (pipeline, store, recorded, location):
        lock = live_holder(store) if store is not None else None
        if store is not None:
            recorded.paid = store.paid_intents(PAID_OPS)
        the_plan = plan(pipeline, recorded, pipeline.image_hashes, retrain=retrain,
                        keep_model=keep_model, files=output_facts(recorded.artifacts),
                        restore=restore)
        return Snapshot(the_plan, recorded, location, lock, tuple(warnings))

