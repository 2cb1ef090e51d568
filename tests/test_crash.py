"""The crash suite: SIGKILL bria-run at every named boundary, run it again until it is done,
and prove from the simulator's own accounting that nothing was created or paid twice and the
outputs are byte-identical to an uninterrupted run."""

from __future__ import annotations

import hashlib
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from simrun import TOKEN, bria, env_for, posts, sim_stats, spawn, write_pipeline

from runner.simulator import SimConfig, Simulator

pytestmark = pytest.mark.slow

IMAGES = 5
SCENES = [
    {"name": "forest", "reference": "scenes/forest.png", "prompt": "Luna in a forest"},
    {"name": "reading", "prompt": "Luna reading by the fire", "variations": 2},
]
IMAGES_OUT = 3


def simulator() -> Simulator:
    return Simulator(SimConfig(token=TOKEN, training_seconds=1.0, generation_seconds=0.2)).start()


def outputs(folder: Path) -> dict[str, str]:
    root = folder / "outputs"
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.png")) if "previous" not in p.parts
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One uninterrupted run: its outputs and its simulator accounting."""
    folder = tmp_path_factory.mktemp("reference")
    path = write_pipeline(folder, images=IMAGES, scenes=SCENES)
    sim = simulator()
    try:
        done = bria(["run", str(path), "-q"], env=env_for(sim.base_url), cwd=folder)
        assert done.returncode == 0, done.stderr
        return {"outputs": outputs(folder), "stats": sim_stats(sim.base_url)}
    finally:
        sim.stop()


def run_until_done(path: Path, env: dict[str, str], folder: Path, limit: int = 6) -> list[int]:
    codes = []
    for _ in range(limit):
        result = bria(["run", str(path), "-q"], env=env, cwd=folder)
        codes.append(result.returncode)
        if result.returncode == 0:
            return codes
        assert result.returncode == -signal.SIGKILL, result.stderr
    raise AssertionError(f"not done after {limit} runs: {codes}")


def assert_exactly_once(stats: dict[str, Any], max_generation_duplicates: int = 0) -> None:
    created = stats["created"]
    assert created["projects"] == 1
    assert created["datasets"] == 1
    assert created["models"] == 1
    assert created["trainings_started"] == 1
    assert created["images"] == IMAGES
    dups = stats["duplicates"]
    assert (dups["projects"], dups["datasets"], dups["images"], dups["models"]) == (0, 0, 0, 0)
    assert dups["generations"] <= max_generation_duplicates


BOUNDARIES = [
    pytest.param("before_intent:create_project", 0, id="before-intent"),
    pytest.param("after_intent:create_project", 0, id="after-intent-before-send"),
    pytest.param("after_send:create_project", 0, id="project-sent-not-recorded"),
    pytest.param("after_send:create_dataset", 0, id="dataset-sent-not-recorded"),
    pytest.param("after_send:generate_visual_schema", 0, id="identity-sent-not-recorded"),
    pytest.param("after_intent:upload_image@2", 0, id="upload-intent"),
    pytest.param("after_send:upload_image@3", 0, id="during-uploads"),
    pytest.param("after_send:create_model", 0, id="model-sent-not-recorded"),
    pytest.param("after_send:start_training", 0, id="training-start-not-recorded"),
    pytest.param("training@2", 0, id="while-training"),
    pytest.param("after_send:structured_prompt", 1, id="structured-prompt-not-recorded"),
    pytest.param("after_intent:generate@2", 0, id="generation-intent"),
    pytest.param("after_send:generate@2", 1, id="generation-sent-not-recorded"),
    pytest.param("after_record:generate", 0, id="during-generation"),
    pytest.param("download@1", 0, id="during-download"),
]


@pytest.mark.parametrize(("boundary", "generation_dups"), BOUNDARIES)
def test_sigkill_at_boundary_then_resume(
    tmp_path: Path, reference: dict[str, Any], boundary: str, generation_dups: int
) -> None:
    # One request at a time, so the kill lands exactly at the boundary and not also in the
    # middle of another thread's request (the random test below covers concurrency).
    path = write_pipeline(tmp_path, images=IMAGES, scenes=SCENES, concurrency=1)
    sim = simulator()
    try:
        env = env_for(sim.base_url)
        first = bria(["run", str(path), "-q"], env={**env, "BRIA_RUN_CRASH_AT": boundary},
                     cwd=tmp_path)
        assert first.returncode == -signal.SIGKILL, f"never reached {boundary}: {first.stderr}"
        run_until_done(path, env, tmp_path)
        stats = sim_stats(sim.base_url)
        assert_exactly_once(stats, generation_dups)
        assert outputs(tmp_path) == reference["outputs"]
        again = bria(["run", str(path), "-q"], env=env, cwd=tmp_path)
        assert again.returncode == 0
        assert posts(sim_stats(sim.base_url)) == posts(stats)  # a finished re-run POSTs nothing
    finally:
        sim.stop()


# The same boundaries on a PostgreSQL state (a representative subset: a resource whose answer
# was lost, a generation whose answer was lost, a download cut short).
PG_BOUNDARIES = [p for p in BOUNDARIES if p.id in (
    "project-sent-not-recorded", "generation-sent-not-recorded", "during-download")]


@pytest.mark.parametrize(("boundary", "generation_dups"), PG_BOUNDARIES)
def test_sigkill_at_boundary_then_resume_on_postgresql(
    tmp_path: Path, reference: dict[str, Any], pg_url: str, boundary: str, generation_dups: int
) -> None:
    path = write_pipeline(tmp_path, images=IMAGES, scenes=SCENES, concurrency=1)
    sim = simulator()
    try:
        env = env_for(sim.base_url, BRIA_RUN_STATE=pg_url)
        first = bria(["run", str(path), "-q"], env={**env, "BRIA_RUN_CRASH_AT": boundary},
                     cwd=tmp_path)
        assert first.returncode == -signal.SIGKILL, f"never reached {boundary}: {first.stderr}"
        run_until_done(path, env, tmp_path)
        stats = sim_stats(sim.base_url)
        assert_exactly_once(stats, generation_dups)
        assert outputs(tmp_path) == reference["outputs"]
        assert not (tmp_path / "state").exists()  # the state was the database's, not a file
    finally:
        sim.stop()


@pytest.mark.parametrize("seed", [1, 2], ids=lambda s: f"seed{s}")
def test_sigkill_at_random_moments(tmp_path: Path, reference: dict[str, Any], seed: int) -> None:
    """Kill from outside at random moments (bounded: at most 8 kills), then finish."""
    rng = random.Random(seed)
    path = write_pipeline(tmp_path, images=IMAGES, scenes=SCENES)
    sim = simulator()
    try:
        env = env_for(sim.base_url)
        kills = 0
        for _ in range(8):
            process = spawn(["run", str(path), "-q"], env=env, cwd=tmp_path)
            time.sleep(rng.uniform(0.2, 2.0))
            if process.poll() is not None:
                break
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=30)
            kills += 1
        run_until_done(path, env, tmp_path)
        # A kill can lose the answers of the generation POSTs in flight (up to concurrency 4);
        # each lost answer costs at most one duplicate. Everything else: exactly once.
        assert_exactly_once(sim_stats(sim.base_url), max_generation_duplicates=4 * kills)
        assert outputs(tmp_path) == reference["outputs"]
    finally:
        sim.stop()


def test_reference_run_costs_what_it_should(reference: dict[str, Any]) -> None:
    stats = reference["stats"]
    assert_exactly_once(stats)
    assert stats["credits"] == 80 + 3 * IMAGES_OUT
    assert len(reference["outputs"]) == IMAGES_OUT
