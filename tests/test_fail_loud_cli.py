"""No failure in silence, as a user sees it: `bria-run` as a process, a fault injected in an
upload, a generation or a download: exit 1, one line naming the step and the cause, the
traceback in a log beside the state (or on the terminal with --debug), nothing started after."""

from __future__ import annotations

from pathlib import Path

import pytest
from simrun import TOKEN, bria, env_for, sim_stats, write_pipeline

from runner.simulator import SimConfig, Simulator

pytestmark = pytest.mark.slow

TRAIN = "POST /v1/tailored-gen/models/{id}/start_training"
GENERATE = "POST /v2/image/generate/tailored"
SCENES = [{"name": n, "prompt": f"Luna {n}"} for n in ("forest", "reading", "beach")]


@pytest.fixture
def sim() -> Simulator:
    with Simulator(SimConfig(token=TOKEN, training_seconds=0.5, generation_seconds=0.1)) as s:
        yield s


@pytest.mark.parametrize(("fault", "step", "cause", "calls"), [
    ("after_send:upload_image@2=assert", "upload/", "AssertionError: injected", {TRAIN: 0}),
    ("after_record:generate=assert", "scene/forest/1", "AssertionError: injected",
     {GENERATE: 1}),
    ("download=assert", "scene/forest/1", "AssertionError: injected", {GENERATE: 1}),
], ids=["upload", "generation", "download"])
def test_a_fault_anywhere_exits_1_naming_step_cause_and_log(
        tmp_path: Path, sim: Simulator, fault: str, step: str, cause: str,
        calls: dict[str, int]) -> None:
    path = write_pipeline(tmp_path, scenes=SCENES, concurrency=1)
    env = env_for(sim.base_url, BRIA_RUN_CRASH_AT=fault)
    result = bria(["run", str(path), "-q"], env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: {step}") and f"stopped the run: {cause}" in line
    assert "traceback in state/luna.errors.log, --debug prints it" in line
    assert "Traceback" not in result.stderr
    log = (tmp_path / "state" / "luna.errors.log").read_text()
    assert "Traceback (most recent call last)" in log and "AssertionError" in log
    assert TOKEN not in log
    seen = sim_stats(sim.base_url)["calls"]
    assert {k: seen.get(k, 0) for k in calls} == calls  # nothing after it started
    # --debug: the traceback on the terminal too; then, without the fault, the run finishes.
    debug = bria(["run", str(path), "-q", "--debug"], env=env, cwd=tmp_path)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    done = bria(["run", str(path), "-q"], env=env_for(sim.base_url), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sim_stats(sim.base_url)["duplicates"]["generations"] == 0


def test_a_full_disk_on_download_exits_1_and_the_next_run_pays_nothing(
        tmp_path: Path, sim: Simulator) -> None:
    path = write_pipeline(tmp_path, scenes=SCENES, concurrency=1)
    env = env_for(sim.base_url, BRIA_RUN_CRASH_AT="download=enospc")
    result = bria(["run", str(path), "-q"], env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: disk full writing outputs/forest/1.png; nothing lost: free space and run again")
    paid = sim_stats(sim.base_url)["credits"]
    done = bria(["run", str(path), "-q"], env=env_for(sim.base_url), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    stats = sim_stats(sim.base_url)
    assert stats["credits"] == paid + 2 * 3  # only the two scenes never generated
    assert stats["duplicates"]["generations"] == 0
