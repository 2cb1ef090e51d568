"""The planner on its own: pure, small cases, each asserting the action and its reason."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from runner.engine.plan import plan
from runner.engine.planned import Plan
from runner.pipeline.spec import Character, Identity, Pipeline, Scene, Training
from runner.state.rows import Recorded, StepRow

IMAGES = tuple(Path(f"/p/luna/training/{i}.png") for i in range(5))
REF = Path("/p/luna/scenes/forest.png")
HASHES = {p: f"{i:064x}" for i, p in enumerate(IMAGES)} | {REF: "f" * 64}


def pipeline(**changes: object) -> Pipeline:
    base = Pipeline(
        path=Path("/p/luna.yaml"), name="luna",
        character=Character(name="Luna", type="defined_character", medium="illustration",
                            images=IMAGES, identity=Identity("auto", samples=5),
                            description="girl with blue hair"),
        training=Training(),
        scenes=(Scene(name="forest", prompt="Luna in the forest", reference=REF,
                      structure_strength=0.6),
                Scene(name="reading", prompt="Luna reading", variations=2, seed=7)),
        outputs=Path("/p/outputs/luna"),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def finished(the_plan: Plan) -> Recorded:
    """The state after a run of ``the_plan`` finished every step."""
    recorded = Recorded()
    for i, step in enumerate(the_plan.steps, start=1):
        row = StepRow(i, step.key, step.kind, step.fingerprint, "done", True, str(i),
                      {"inputs": step.inputs}, 1, None, 0.0, 1.0)
        recorded.steps.setdefault(step.key, []).append(row)
    return recorded


def actions(the_plan: Plan) -> dict[str, str]:
    return {s.key: s.action for s in the_plan.steps}


def test_fresh_state_creates_everything_in_order() -> None:
    the_plan = plan(pipeline(), Recorded(), HASHES)
    kinds = [s.kind for s in the_plan.steps]
    assert kinds == ["project", "dataset", "identity", *["upload"] * 5, "complete", "model",
                     "train", "scene", "scene", "scene"]
    assert set(actions(the_plan).values()) == {"create"}
    assert the_plan.credits == 80 + 3 * 3


def test_unchanged_finished_pipeline_has_nothing_to_do() -> None:
    first = plan(pipeline(), Recorded(), HASHES)
    again = plan(pipeline(), finished(first), HASHES)
    assert not again.has_work
    assert set(actions(again).values()) == {"done"}


def test_editing_a_prompt_changes_only_that_scene() -> None:
    first = plan(pipeline(), Recorded(), HASHES)
    scenes = (replace(pipeline().scenes[0], prompt="Luna at dusk"), pipeline().scenes[1])
    again = plan(pipeline(scenes=scenes), finished(first), HASHES)
    work = {s.key: s.reason for s in again.steps if s.is_work}
    assert work == {"scene/forest/1": "changed: prompt"}


def test_adding_a_scene_creates_only_its_steps() -> None:
    first = plan(pipeline(), Recorded(), HASHES)
    scenes = (*pipeline().scenes, Scene(name="beach", prompt="Luna on the beach"))
    again = plan(pipeline(scenes=scenes), finished(first), HASHES)
    assert {s.key: s.action for s in again.steps if s.is_work} == {"scene/beach/1": "create"}


def test_removed_scene_is_orphaned_not_deleted() -> None:
    first = plan(pipeline(), Recorded(), HASHES)
    again = plan(pipeline(scenes=pipeline().scenes[:1]), finished(first), HASHES)
    orphans = [s for s in again.steps if s.action == "orphaned"]
    assert [s.key for s in orphans] == ["scene/reading/1", "scene/reading/2"]
    assert not again.has_work


@pytest.mark.parametrize("change", [
    pytest.param({"images": IMAGES[:4]}, id="training-images"),
    pytest.param({"description": "girl with red hair"}, id="character"),
], )
def test_changed_training_inputs_block_before_training(change: dict[str, object]) -> None:
    first = plan(pipeline(), Recorded(), HASHES)
    character = replace(pipeline().character, **change)  # type: ignore[arg-type]
    again = plan(pipeline(character=character), finished(first), HASHES)
    assert again.blocked
    assert actions(again)["train"] == "changed"


def test_changed_training_settings_block_too() -> None:
    first = plan(pipeline(), Recorded(), HASHES)
    again = plan(pipeline(training=Training(mode="expert")), finished(first), HASHES)
    assert again.blocked and "model" in again.blocked[0]


def test_keep_model_uses_the_old_model_and_generates_nothing_new() -> None:
    first = plan(pipeline(), Recorded(), HASHES)
    character = replace(pipeline().character, images=IMAGES[:4])
    again = plan(pipeline(character=character), finished(first), HASHES, keep_model=True)
    assert not again.blocked and again.model_source == "kept"
    assert not again.has_work


def test_retrain_plans_new_dataset_and_model() -> None:
    first = plan(pipeline(), Recorded(), HASHES)
    character = replace(pipeline().character, images=IMAGES[:4])
    again = plan(pipeline(character=character), finished(first), HASHES, retrain=True)
    assert not again.blocked
    work = actions(again)
    assert work["dataset"] == work["model"] == work["train"] == "changed"
    assert work["project"] == "done"
    assert all(work[f"scene/{k}"] == "changed" for k in ("forest/1", "reading/1", "reading/2"))


def test_model_id_skips_training_entirely() -> None:
    the_plan = plan(pipeline(training=Training(model_id=812)), Recorded(), HASHES)
    assert [s.kind for s in the_plan.steps] == ["scene"] * 3
    assert the_plan.model_source == "model_id"
    assert the_plan.credits == 9


def test_seeds_are_deterministic_and_distinct_per_variation() -> None:
    a = plan(pipeline(), Recorded(), HASHES)
    b = plan(pipeline(), Recorded(), HASHES)
    seeds = {s.key: s.seed for s in a.steps if s.kind == "scene"}
    assert seeds == {s.key: s.seed for s in b.steps if s.kind == "scene"}
    assert seeds["scene/reading/1"] == 7 and seeds["scene/reading/2"] == 8
    assert seeds["scene/forest/1"] is not None


def test_interrupted_step_resumes() -> None:
    first = plan(pipeline(), Recorded(), HASHES)
    recorded = finished(first)
    row = recorded.steps["train"][0]
    recorded.steps["train"] = [replace(row, status="running")]
    again = plan(pipeline(), recorded, HASHES)
    assert actions(again)["train"] == "resume"
    assert not again.blocked


def test_identical_images_upload_once() -> None:
    twin = Path("/p/luna/training/twin.png")
    character = replace(pipeline().character, images=(*IMAGES, twin))
    the_plan = plan(pipeline(character=character), Recorded(), HASHES | {twin: HASHES[IMAGES[0]]})
    assert len(the_plan.by_kind("upload")) == 5
