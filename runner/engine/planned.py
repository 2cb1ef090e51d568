"""A plan as data: what a run will do with each step (``Action``), the planned steps, and the
estimates of what is left. ``runner.engine.plan`` makes one; the executor and the display read it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from runner.pipeline.spec import Pipeline
from runner.state.rows import StepKind

TRAINING_KINDS = (StepKind.PROJECT, StepKind.DATASET, StepKind.IDENTITY, StepKind.UPLOAD,
                  StepKind.CAPTION, StepKind.COMPLETE, StepKind.MODEL, StepKind.TRAIN)
# Rough wall-clock figures for the estimate only (Bria: training 1-6 h, images ~10-30 s).
TRAINING_SECONDS = 2 * 3600
TRAINING_FLOOR_SECONDS = 5 * 60
IMAGE_SECONDS = 20
# ``concurrency: auto`` at the Starter plan's 60 requests a minute: a job a second, each in
# flight IMAGE_SECONDS, so about this many at once (engine.flow).
AUTO_IN_FLIGHT = 20
UPLOAD_SECONDS = 2


class Action(StrEnum):
    """What a run will do with a step (``runner.engine.plan``'s docstring says what each
    means)."""

    CREATE = "create"
    DONE = "done"
    RESUME = "resume"
    CHANGED = "changed"
    KEPT = "kept"
    ORPHANED = "orphaned"


WORK_ACTIONS = frozenset({Action.CREATE, Action.RESUME, Action.CHANGED})


@dataclass(frozen=True)
class PlannedStep:
    key: str
    kind: StepKind
    fingerprint: str
    action: Action
    reason: str
    inputs: dict[str, Any] = field(default_factory=dict, compare=False)
    remote_id: str | None = None
    scene: str | None = None
    variation: int | None = None
    seed: int | None = None
    credits: float = 0.0
    began: float | None = None  # a training already paid for: when it really started
    revived: bool = False  # done before with these inputs, but not the row in use now

    @property
    def is_work(self) -> bool:
        return self.action in WORK_ACTIONS


@dataclass(frozen=True)
class Plan:
    pipeline: Pipeline
    steps: tuple[PlannedStep, ...]
    blocked: tuple[str, ...] = ()  # why the run must stop before spending training credits
    model_source: str = "train"  # train | model_id | kept (where the model comes from)
    kept_for: str | None = None  # kept: the training inputs --keep-model was given for
    gone: str | None = None  # a run found this recorded kind gone at Bria; --retrain rebuilds it
    job_seconds: tuple[float, ...] = ()  # how long earlier runs' generations took, oldest first

    @property
    def has_work(self) -> bool:
        return any(s.is_work for s in self.steps) or bool(self.blocked)

    @property
    def credits(self) -> float:
        return sum(s.credits for s in self.steps if s.is_work)

    def by_kind(self, kind: StepKind) -> list[PlannedStep]:
        return [s for s in self.steps if s.kind == kind]

    def estimate_seconds(self, now: float | None = None) -> float:
        """What is left: a training in progress counts from its real start."""
        work = [s for s in self.steps if s.is_work]
        conc = max(1, self.pipeline.concurrency or AUTO_IN_FLIGHT)
        now = time.time() if now is None else now
        seconds: float = sum(_training_left(s, now) for s in work if s.kind == StepKind.TRAIN)
        seconds += sum(UPLOAD_SECONDS for s in work if s.kind == StepKind.UPLOAD) / conc
        seconds += sum(IMAGE_SECONDS for s in work if s.kind == StepKind.SCENE) / conc
        return seconds


def _training_left(step: PlannedStep, now: float) -> float:
    if step.began is None:
        return TRAINING_SECONDS
    # Past the typical time it may end any moment: say a few minutes, never zero.
    return max(TRAINING_FLOOR_SECONDS, TRAINING_SECONDS - (now - step.began))
