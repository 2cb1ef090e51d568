"""Words a user reads: the plain log's training heartbeat, rate-limit waits in plain words."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console
from simrun import write_pipeline

from runner.cli import main
from runner.display.live import LiveReporter
from runner.display.reporters import HEARTBEAT_SECONDS, PlainReporter, describe
from runner.events import EventKind
from runner.state.rows import ApiIdentity
from runner.state.store import Store


def test_the_plain_log_beats_every_few_minutes_while_training() -> None:
    now = [0.0]
    out = io.StringIO()
    log = PlainReporter(out, clock=lambda: now[0])
    for minute in range(75):  # polled every minute for 1h15m, always InProgress
        now[0] = minute * 60.0
        log.emit(EventKind.TRAINING, "train", status="InProgress", model_id=4001,
                 elapsed=minute * 60.0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 + int(74 * 60 // HEARTBEAT_SECONDS)
    assert lines[-1].endswith("training model 4001: InProgress (1h10m)")
    now[0] += 1
    log.emit(EventKind.TRAINING, "train", status="Completed", model_id=4001, elapsed=4500.0)
    assert out.getvalue().splitlines()[-1].endswith("training model 4001: Completed (1h15m)")


def test_rate_limit_waits_are_said_in_plain_words() -> None:
    line = describe(EventKind.WAIT, None, {"endpoint": "GET /v2/status/{id}", "seconds": 47.6})
    assert line == "waiting 48 s for Bria's rate limit on status checks"
    upload = describe(EventKind.WAIT, None, {
        "endpoint": "POST /v1/tailored-gen/datasets/{id}/images", "seconds": 3})
    assert upload == "waiting 3 s for Bria's rate limit on uploads"


@pytest.mark.parametrize("command", ["status", "plan", "outputs"])
def test_only_a_simulated_state_suggests_simulate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str,
) -> None:
    monkeypatch.delenv("BRIA_RUN_STATE", raising=False)
    path = write_pipeline(tmp_path)
    Store.open(tmp_path / "state" / "luna.sim.sqlite", ApiIdentity("simulated", "w1")).close()
    result = CliRunner().invoke(main, [command, str(path)])
    assert result.exit_code == 0, result.output
    hint = next(line for line in result.stderr.splitlines() if "simulated one exists" in line)
    assert hint.endswith(f"): bria-run {command} {path} --simulate")
    quiet = CliRunner().invoke(main, [command, str(path), "--simulate"])
    assert "a simulated one exists" not in quiet.stderr


def test_the_live_display_sums_up_and_lists_failed_and_in_flight_first() -> None:
    now = [100.0]
    out = io.StringIO()
    console = Console(file=out, width=100, color_system=None)
    live = LiveReporter(console, start=False, clock=lambda: now[0])
    keys = [f"scene/s{i}/1" for i in range(6)]
    live.emit(EventKind.PLAN, text="plan: ...", scenes=keys, uploads=0)
    live.emit(EventKind.PHASE, name="generation", total=6)
    for key in keys[:2]:
        live.emit(EventKind.STEP, key, kind="scene", state="done", path="x.png")
    live.emit(EventKind.SCENE, keys[5], state="generating")
    live.emit(EventKind.STEP, keys[4], kind="scene", state="failed", error="refused")
    for _ in range(3):
        live.emit(EventKind.NOTICE, message="Bria is slow today")
    now[0] += 120.0  # two images in two minutes: one a minute
    console.print(live._render())
    lines = [line.strip() for line in out.getvalue().splitlines() if line.strip()]
    assert lines[:2] == ["plan: ...", "Bria is slow today (x3)"]
    assert "scenes 2/6 · 1 generating · 1 failed · about 3 min left" in lines
    order = [line.split()[0] for line in lines if line.startswith("scene/")]
    assert order == [keys[4], keys[5], keys[2], keys[3], keys[0], keys[1]]


def test_clean_never_deletes_a_resource_whose_name_is_not_this_pipelines() -> None:
    from runner.bria.client import BriaClient
    from runner.engine.cleanup import Leftover, delete
    from runner.simulator import SimConfig, Simulator

    with Simulator(SimConfig(token="t")) as sim, BriaClient(sim.base_url, "t", rpm=None) as api:
        project = api.create_project(project_name="theirs", ip_type="defined_character",
                                     ip_medium="illustration", ip_name="Milo",
                                     ip_description="a boy")
        dataset = api.create_dataset(project_id=int(project["id"]), name="milo-12345678")
        said: list[str] = []
        done = delete(api, "luna", [Leftover("dataset", int(dataset["id"]), None, "superseded")],
                      record=said.append, tell=said.append)
        assert done.deleted == [] and "not this pipeline's: not ours to delete" in said[0]
        assert api.get_dataset(int(dataset["id"]))["name"] == "milo-12345678"  # still there
