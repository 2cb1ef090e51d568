"""A pipeline file that lives in version control: each kind of edit, end to end against the
simulator, costs exactly what it should (counted from the simulator's own POST accounting)
and never overwrites an earlier output silently."""

from __future__ import annotations

import copy
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from simrun import TOKEN, bria, env_for, make_image, posts, sim_stats, write_pipeline

from runner.cli import main
from runner.simulator import SimConfig, Simulator

pytestmark = pytest.mark.slow

SCENES: list[dict[str, Any]] = [
    {"name": "forest", "reference": "scenes/forest.png", "prompt": "Luna in a forest"},
    {"name": "reading", "prompt": "Luna reading by the fire", "variations": 2},
]
GENERATE = "POST /v2/image/generate/tailored"
STRUCTURED = "POST /v2/structured_prompt/generate"
CASTLE = {"name": "castle", "prompt": "Luna at a castle"}
START_TRAINING = "POST /v1/tailored-gen/models/{id}/start_training"


@pytest.fixture(scope="module")
def sim() -> Any:
    with Simulator(SimConfig(token=TOKEN, training_seconds=1.0, generation_seconds=0.1)) as s:
        yield s


@pytest.fixture(scope="module")
def model(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> int:
    """One trained model, shared by the scene tests (their files name it as ``model_id``)."""
    folder = tmp_path_factory.mktemp("trained")
    path = first_run(folder, sim)
    return int(cli("outputs", path, "--json")["model_id"])


def bria_run(path: Path, sim: Simulator, *args: str) -> Any:
    return bria(["run", str(path), "-q", *args], env=env_for(sim.base_url), cwd=path.parent)


def cli(command: str, path: Path, *args: str, code: int = 0) -> Any:
    """A read-only command in this process (no API involved), on the run's default state."""
    result = CliRunner().invoke(main, [command, str(path), "--state", str(path.parent / "state"),
                                       *args])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


def first_run(folder: Path, sim: Simulator, scenes: list[dict[str, Any]] | None = None,
              model_id: int | None = None) -> Path:
    path = write_pipeline(folder, scenes=scenes or SCENES, model_id=model_id)
    result = bria_run(path, sim)
    assert result.returncode == 0, result.stderr
    return path


def edited(changes: dict[str, dict[str, Any]], *extra: dict[str, Any]) -> list[dict[str, Any]]:
    """SCENES with some fields changed, and scenes added at the end."""
    scenes = copy.deepcopy(SCENES)
    for scene in scenes:
        scene.update(changes.get(scene["name"], {}))
    return scenes + list(extra)


def reading(prompt: str) -> list[dict[str, Any]]:
    return [{"name": "reading", "prompt": prompt}]


def posts_since(before: dict[str, Any], sim: Simulator) -> Counter[str]:
    after = Counter(posts(sim_stats(sim.base_url)))
    after.subtract(Counter(posts(before)))
    return Counter({k: v for k, v in after.items() if v})


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def current_outputs(folder: Path) -> dict[str, str]:
    root = folder / "outputs"
    return {str(p.relative_to(root)): sha(p) for p in sorted(root.rglob("*.png"))
            if "previous" not in p.parts}


def plan_json(path: Path, *args: str) -> dict[str, Any]:
    return cli("plan", path, "--json", *args)  # type: ignore[no-any-return]


def actions(plan: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {s["key"]: (s["action"], s["reason"]) for s in plan["steps"]}


def test_unchanged_file_costs_zero_posts(tmp_path: Path, sim: Simulator, model: int) -> None:
    path = first_run(tmp_path, sim, model_id=model)
    before, files = sim_stats(sim.base_url), current_outputs(tmp_path)
    assert bria_run(path, sim).returncode == 0
    assert posts_since(before, sim) == Counter()
    assert current_outputs(tmp_path) == files


EDITS = [
    pytest.param({"reading": {"prompt": "Luna reading in the rain"}}, "scene/reading",
                 "changed: prompt", {GENERATE: 2}, id="prompt-of-a-two-variation-scene"),
    pytest.param({"reading": {"aspect_ratio": "16:9"}}, "scene/reading",
                 "changed: aspect_ratio", {GENERATE: 2}, id="parameter"),
    pytest.param({"forest": {"prompt": "Luna in a dark forest"}}, "scene/forest",
                 "changed: prompt", {STRUCTURED: 1, GENERATE: 1}, id="prompt-of-a-reference-scene"),
]


@pytest.mark.parametrize(("changes", "prefix", "reason", "cost"), EDITS)
def test_edited_scene_costs_exactly_its_own_generations(
    tmp_path: Path, sim: Simulator, model: int, changes: dict[str, Any], prefix: str, reason: str,
    cost: dict[str, int],
) -> None:
    path = first_run(tmp_path, sim, model_id=model)
    before, old = sim_stats(sim.base_url), current_outputs(tmp_path)
    write_pipeline(tmp_path, scenes=edited(changes), model_id=model)
    planned = actions(plan_json(path))
    work = {k: v for k, v in planned.items() if v[0] != "done"}
    assert set(work) == {k for k in planned if k.startswith(prefix + "/")}
    assert all(why == ("changed", reason) for why in work.values()), work
    result = bria_run(path, sim)
    assert result.returncode == 0, result.stderr
    assert posts_since(before, sim) == Counter(cost)
    new = current_outputs(tmp_path)
    scene = prefix.split("/")[1]
    assert {k for k in new if new[k] != old[k]} == {k for k in old if k.startswith(scene + "/")}
    # The earlier images are kept, byte for byte, under <scene>/previous/<fingerprint>/.
    kept = {p.name: sha(p) for p in (tmp_path / "outputs" / scene / "previous").rglob("*.png")}
    assert kept == {Path(k).name: v for k, v in old.items() if k.startswith(scene + "/")}


def test_added_scene_costs_only_its_own_generation(
    tmp_path: Path, sim: Simulator, model: int
) -> None:
    path = first_run(tmp_path, sim, model_id=model)
    before, old = sim_stats(sim.base_url), current_outputs(tmp_path)
    write_pipeline(tmp_path, scenes=edited({}, CASTLE), model_id=model)
    planned = actions(plan_json(path))
    assert {k: v for k, v in planned.items() if v[0] != "done"} == {
        "scene/castle/1": ("create", "new")}
    assert bria_run(path, sim).returncode == 0
    assert posts_since(before, sim) == Counter({GENERATE: 1})
    assert current_outputs(tmp_path) == {**old, "castle/1.png": current_outputs(tmp_path)[
        "castle/1.png"]}


def test_removed_scene_is_kept_and_shown_orphaned(
    tmp_path: Path, sim: Simulator, model: int
) -> None:
    path = first_run(tmp_path, sim, model_id=model)
    before, old = sim_stats(sim.base_url), current_outputs(tmp_path)
    write_pipeline(tmp_path, scenes=[SCENES[0]], model_id=model)
    plan = plan_json(path)
    assert {k: v[0] for k, v in actions(plan).items() if k.startswith("scene/")} == {
        "scene/forest/1": "done", "scene/reading/1": "orphaned", "scene/reading/2": "orphaned"}
    assert plan["has_work"] is False
    assert "orphaned" in cli("plan", path, "--detailed-exitcode", code=0)
    assert bria_run(path, sim).returncode == 0
    assert posts_since(before, sim) == Counter()
    assert current_outputs(tmp_path) == old  # the removed scene's files stay on disk


def change_training_image(folder: Path) -> None:
    make_image(folder / "training" / "02.png", 42)


def test_changed_training_image_stops_before_spending_training_credits(
    tmp_path: Path, sim: Simulator
) -> None:
    path = first_run(tmp_path, sim)
    before = sim_stats(sim.base_url)
    change_training_image(tmp_path)
    plan = plan_json(path)
    assert plan["has_work"] and any(why.startswith("dataset: changed: images")
                                    for why in plan["blocked"]), plan["blocked"]
    assert actions(plan)["train"][0] == "changed"
    cli("plan", path, "--detailed-exitcode", code=2)
    result = bria_run(path, sim)
    assert result.returncode == 1
    assert "stale" in result.stderr and "--retrain" in result.stderr
    assert "dataset" in result.stderr  # says why: the dataset's images changed
    after = sim_stats(sim.base_url)
    assert after["credits"] == before["credits"]
    assert after["created"] == before["created"]
    assert posts_since(before, sim) == Counter()


def test_keep_model_goes_on_with_the_old_model(tmp_path: Path, sim: Simulator) -> None:
    path = first_run(tmp_path, sim)
    model = cli("outputs", path, "--json")["model_id"]
    before = sim_stats(sim.base_url)
    change_training_image(tmp_path)
    write_pipeline(tmp_path, scenes=edited({}, CASTLE))
    change_training_image(tmp_path)  # write_pipeline redraws the training images
    planned = actions(plan_json(path, "--keep-model"))
    assert planned["train"][0] == "kept"
    result = bria_run(path, sim, "--keep-model")
    assert result.returncode == 0, result.stderr
    assert posts_since(before, sim) == Counter({GENERATE: 1})  # the new scene, old model
    assert cli("outputs", path, "--json")["model_id"] == model


def test_retrain_trains_exactly_one_new_model(tmp_path: Path, sim: Simulator) -> None:
    path = first_run(tmp_path, sim)
    model = cli("outputs", path, "--json")["model_id"]
    before, old = sim_stats(sim.base_url), current_outputs(tmp_path)
    change_training_image(tmp_path)
    result = bria_run(path, sim, "--retrain")
    assert result.returncode == 0, result.stderr
    after = sim_stats(sim.base_url)
    grown = {k: after["created"][k] - before["created"][k] for k in after["created"]}
    assert grown["trainings_started"] == 1 and grown["models"] == 1 and grown["datasets"] == 1
    assert grown["projects"] == 0  # the character did not change: same project
    assert posts_since(before, sim)[START_TRAINING] == 1
    assert posts_since(before, sim)[GENERATE] == 3  # every scene, with the new model
    assert cli("outputs", path, "--json")["model_id"] != model
    kept = sorted(sha(p) for p in (tmp_path / "outputs").rglob("previous/*/*.png"))
    assert kept == sorted(old.values())


def test_outputs_of_a_scene_edited_twice_are_all_kept(
    tmp_path: Path, sim: Simulator, model: int
) -> None:
    path = first_run(tmp_path, sim, scenes=reading("Luna reading"), model_id=model)
    seen = [sha(tmp_path / "outputs" / "reading" / "1.png")]
    for prompt in ("Luna reading a map", "Luna reading a letter"):
        write_pipeline(tmp_path, scenes=reading(prompt), model_id=model)
        assert bria_run(path, sim).returncode == 0
        seen.append(sha(tmp_path / "outputs" / "reading" / "1.png"))
    previous = sorted((tmp_path / "outputs" / "reading" / "previous").iterdir())
    assert len(previous) == 2
    assert sorted(sha(p / "1.png") for p in previous) == sorted(seen[:2])
    assert len(set(seen)) == 3


def test_reverted_prompt_brings_back_its_own_image(
    tmp_path: Path, sim: Simulator, model: int
) -> None:
    """A -> B -> A: the file on disk must be A's image again, not B's left in place."""
    path = first_run(tmp_path, sim, scenes=reading("Luna reading"), model_id=model)
    first = sha(tmp_path / "outputs" / "reading" / "1.png")
    write_pipeline(tmp_path, scenes=reading("Luna reading a map"), model_id=model)
    assert bria_run(path, sim).returncode == 0
    write_pipeline(tmp_path, scenes=reading("Luna reading"), model_id=model)
    before, second = sim_stats(sim.base_url), sha(tmp_path / "outputs" / "reading" / "1.png")
    result = bria_run(path, sim)
    assert result.returncode == 0, result.stderr
    assert sha(tmp_path / "outputs" / "reading" / "1.png") == first
    assert posts_since(before, sim) == Counter()  # its job is still there: fetched, not paid
    kept = [sha(p) for p in (tmp_path / "outputs" / "reading" / "previous").rglob("*.png")]
    assert second in kept
    listed = cli("outputs", path, "--json")["files"]
    assert [(f["path"], f["sha256"]) for f in listed] == [
        (str(tmp_path / "outputs" / "reading" / "1.png"), first)]
