"""How each step kind runs: its function, whether its steps run alone or concurrently, whether a
failure stops the run, and what is recorded when one is done.

The executor knows no step kind by name: to add one, write its function (``training`` or
``scene``), give it a ``StepKind`` and a ``StepSpec`` here, and plan it in ``plan``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runner.engine.context import Context, StepFunction
from runner.engine.gone import forget_gone, remember_rebuild
from runner.engine.planned import PlannedStep
from runner.engine.scene import do_scene
from runner.engine.training import (
    do_caption,
    do_complete,
    do_dataset,
    do_identity,
    do_model,
    do_project,
    do_train,
    do_upload,
)
from runner.state.rows import StepKind


@dataclass(frozen=True)
class StepSpec:
    run: StepFunction
    is_concurrent: bool = False  # its steps run together, on the run's workers
    is_fatal: bool = True  # a failure stops the run (else only that step fails)
    names_resource: bool = False  # its remote id names a resource later steps use (ctx.ids)
    makes_image: bool = False  # its outputs are an image file, recorded as an artifact
    before: Callable[[Context, PlannedStep], None] | None = None  # recorded before it runs


def _remember_epoch(ctx: Context, step: PlannedStep) -> None:
    # A --retrain after a failed training (or a model gone at Bria) bumps the epoch: remember
    # it for good.
    ctx.store.set_meta("model_epoch", str(step.inputs["epoch"]))
    forget_gone(ctx, "model")


STEPS: dict[StepKind, StepSpec] = {
    StepKind.PROJECT: StepSpec(do_project, names_resource=True, before=remember_rebuild),
    StepKind.DATASET: StepSpec(do_dataset, names_resource=True, before=remember_rebuild),
    StepKind.IDENTITY: StepSpec(do_identity),
    StepKind.UPLOAD: StepSpec(do_upload, is_concurrent=True),
    StepKind.CAPTION: StepSpec(do_caption),
    StepKind.COMPLETE: StepSpec(do_complete),
    StepKind.MODEL: StepSpec(do_model, names_resource=True, before=_remember_epoch),
    StepKind.TRAIN: StepSpec(do_train),
    StepKind.SCENE: StepSpec(do_scene, is_concurrent=True, is_fatal=False, makes_image=True),
}


def artifact_of(step: PlannedStep, source: str | None, outputs: dict[str, Any]) -> dict[str, Any]:
    """The artifact row of an image-making step, recorded with the step's completion."""
    return {"scene": step.scene, "variation": step.variation or 1, "path": outputs["path"],
            "sha256": outputs["sha256"], "seed": outputs.get("seed"), "source": source,
            "bytes": outputs.get("bytes")}
