"""`bria-run run` end to end over real HTTP against the simulator: both generations, model
reuse, failures that must not lose work, and network trouble."""

from __future__ import annotations

import hashlib
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from simrun import TOKEN, bria, env_for, make_image, posts, sim_stats, write_pipeline

from runner.simulator import SimConfig, Simulator

pytestmark = pytest.mark.slow


@pytest.fixture
def sim() -> Simulator:
    with Simulator(SimConfig(token=TOKEN, training_seconds=1.0, generation_seconds=0.2)) as s:
        yield s


def run(path: Path, sim: Simulator, *args: str, **env: str) -> Any:
    return bria(["run", str(path), "-q", *args], env=env_for(sim.base_url, **env), cwd=path.parent)


def pngs(folder: Path) -> dict[str, str]:
    root = folder / "outputs"
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.png")) if "previous" not in p.parts}


def test_fibo_pipeline_runs_end_to_end_and_rerun_does_nothing(tmp_path: Path, sim: Simulator) -> None:
    path = write_pipeline(tmp_path)
    first = run(path, sim)
    assert first.returncode == 0, first.stderr
    assert sorted(pngs(tmp_path)) == ["forest/1.png", "reading/1.png", "reading/2.png"]
    stats = sim_stats(sim.base_url)
    assert stats["credits"] == 80 + 3 * 3
    assert stats["calls"]["POST /v2/structured_prompt/generate"] == 1  # the one scene reference
    again = run(path, sim)
    assert again.returncode == 0
    assert "0 new image(s)" in again.stdout
    assert posts(sim_stats(sim.base_url)) == posts(stats)


def test_legacy_pipeline_with_reference_and_depth_guidance(tmp_path: Path, sim: Simulator) -> None:
    make_image(tmp_path / "guidance" / "depth.png", 50)
    scenes = [
        {"name": "forest", "reference": "scenes/forest.png", "prompt": "Luna in a forest",
         "structure_strength": 0.8},
        {"name": "castle", "prompt": "Luna at the castle",
         "guidance": [{"method": "controlnet_depth", "image": "guidance/depth.png", "scale": 0.8}]},
    ]
    path = write_pipeline(tmp_path, version="light", scenes=scenes)
    result = run(path, sim)
    assert result.returncode == 0, result.stderr
    assert sorted(pngs(tmp_path)) == ["castle/1.png", "forest/1.png"]
    calls = sim_stats(sim.base_url)["calls"]
    assert calls["POST /v1/tailored-gen/generate_prefix"] == 1
    assert calls["POST /v1/reimagine"] == 1
    assert calls["POST /v1/text-to-image/tailored/{id}"] == 1


def test_model_id_reuses_a_trained_model_without_training(tmp_path: Path, sim: Simulator) -> None:
    first = write_pipeline(tmp_path / "a")
    assert run(first, sim).returncode == 0
    model_id = _model_id(first, sim)
    before = sim_stats(sim.base_url)
    reuse = write_pipeline(tmp_path / "b", name="luna-again", model_id=model_id)
    result = run(reuse, sim)
    assert result.returncode == 0, result.stderr
    after = sim_stats(sim.base_url)
    assert after["created"]["trainings_started"] == before["created"]["trainings_started"]
    assert after["created"]["projects"] == before["created"]["projects"]
    assert after["credits"] - before["credits"] == 3 * 3
    assert len(pngs(tmp_path / "b")) == 3


def _model_id(path: Path, sim: Simulator) -> int:
    shown = bria(["outputs", str(path), "--json"], env=env_for(sim.base_url), cwd=path.parent)
    return int(json.loads(shown.stdout)["model_id"])


def test_without_token_or_simulate_a_clear_error(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path)
    env = env_for("http://127.0.0.1:9")
    del env["BRIA_API_TOKEN"]
    result = bria(["run", str(path)], env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "BRIA_API_TOKEN is not set" in result.stderr and "--simulate" in result.stderr
    assert "Traceback" not in result.stderr


def test_failed_training_exits_1_then_retrain_trains_once_more(tmp_path: Path, sim: Simulator) -> None:
    sim.configure(fail_training=True)
    path = write_pipeline(tmp_path)
    failed = run(path, sim)
    assert failed.returncode == 1
    assert "training failed for model" in failed.stderr and "(Failed)" in failed.stderr
    assert "--retrain" in failed.stderr
    again = run(path, sim)  # without --retrain: the same clear error, nothing spent
    assert again.returncode == 1 and "training failed" in again.stderr
    assert sim_stats(sim.base_url)["created"]["trainings_started"] == 1
    sim.configure(fail_training=False)
    retrained = run(path, sim, "--retrain")
    assert retrained.returncode == 0, retrained.stderr
    stats = sim_stats(sim.base_url)
    assert stats["created"]["trainings_started"] == 2 and stats["created"]["models"] == 2
    assert stats["created"]["datasets"] == 1  # the dataset did not change; only the model
    assert len(pngs(tmp_path)) == 3


def test_one_scene_refused_by_moderation_does_not_stop_the_others(
    tmp_path: Path, sim: Simulator
) -> None:
    scenes = [{"name": "ok", "prompt": "Luna smiling"},
              {"name": "bad", "prompt": "Luna forbidden scene"},
              {"name": "fine", "prompt": "Luna waving"}]
    path = write_pipeline(tmp_path, scenes=scenes)
    result = run(path, sim)
    assert result.returncode == 1
    assert "1 step(s) failed" in result.stderr and "scene/bad/1" in result.stderr
    assert sorted(pngs(tmp_path)) == ["fine/1.png", "ok/1.png"]


def test_expired_result_link_is_regenerated_with_the_same_seed(
    tmp_path: Path, sim: Simulator
) -> None:
    scenes = [{"name": "forest", "reference": "scenes/forest.png", "prompt": "Luna in a forest",
               "seed": 5}]
    reference = write_pipeline(tmp_path / "ref", scenes=scenes)
    assert run(reference, sim).returncode == 0
    path = write_pipeline(tmp_path / "run", name="luna-expiring", scenes=scenes)
    sim.configure(link_ttl=0.3)
    crashed = run(path, sim, BRIA_RUN_CRASH_AT="after_record:generate")
    assert crashed.returncode == -signal.SIGKILL
    time.sleep(1.0)  # the recorded job's result link expires meanwhile
    sim.configure(link_ttl=3600.0)
    resumed = run(path, sim)
    assert resumed.returncode == 0, resumed.stderr
    assert pngs(tmp_path / "run") == pngs(tmp_path / "ref")  # same seed, same image
    calls = sim_stats(sim.base_url)["calls"]
    assert calls["POST /v2/image/generate/tailored"] == 3  # ref run, expired one, regenerated
    assert calls["POST /v2/structured_prompt/generate"] == 2  # reused, not asked again


def test_transient_faults_are_survived_without_duplicates(tmp_path: Path, sim: Simulator) -> None:
    """5xx before processing, dropped connections and 429 storms, seeded: the run finishes
    (re-running after a give-up is allowed) and nothing but lost generation answers repeats."""
    sim.configure(fail_rate=0.08, storm_rate=0.05, drop_rate=0.05, lost_answer_rate=0.12, seed=7)
    path = write_pipeline(tmp_path)
    codes = []
    for _ in range(4):
        result = run(path, sim)
        codes.append(result.returncode)
        assert "Traceback" not in result.stderr
        if result.returncode == 0:
            break
    assert codes[-1] == 0, (codes, result.stderr)
    stats = sim_stats(sim.base_url)
    assert sum(stats["faults"].values()) >= 4, stats["faults"]  # the faults did happen
    created, dups = stats["created"], stats["duplicates"]
    assert (created["projects"], created["datasets"], created["models"]) == (1, 1, 1)
    assert created["trainings_started"] == 1 and created["images"] == 5
    assert (dups["projects"], dups["datasets"], dups["images"], dups["models"]) == (0, 0, 0, 0)
    assert len(pngs(tmp_path)) == 3


def test_outputs_never_escape_and_are_written_atomically(tmp_path: Path, sim: Simulator) -> None:
    path = write_pipeline(tmp_path)
    assert run(path, sim).returncode == 0
    leftovers = [p for p in (tmp_path / "outputs").rglob("*") if p.name.endswith(".part")]
    assert leftovers == []
    shown = json.loads(bria(["outputs", str(path), "--json"], env=env_for(sim.base_url),
                            cwd=tmp_path).stdout)
    for entry in shown["files"]:
        file = Path(entry["path"])
        assert file.is_relative_to((tmp_path / "outputs").resolve())
        assert hashlib.sha256(file.read_bytes()).hexdigest() == entry["sha256"]


def test_token_is_never_written_to_state_or_outputs(tmp_path: Path, sim: Simulator) -> None:
    path = write_pipeline(tmp_path)
    result = run(path, sim, "--json")
    assert TOKEN not in result.stdout + result.stderr
    for file in tmp_path.rglob("*"):
        if file.is_file():
            assert TOKEN.encode() not in file.read_bytes(), file
