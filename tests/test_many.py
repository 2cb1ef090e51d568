"""Several pipelines in one command: one budget for all of them (in memory, with SQLite
states), one state, lock and outputs each; a failure in one does not stop the others; the exit
code is the worst of theirs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from simrun import TOKEN, bria, env_for, sim_stats, write_pipeline

from runner.many import worst
from runner.simulator import SimConfig, Simulator

SCENES = [{"name": "forest", "prompt": "Luna in a forest"},
          {"name": "reading", "prompt": "Luna reading by the fire", "variations": 2}]


@pytest.mark.parametrize(("codes", "expected"), [
    ([], 0), ([0, 0], 0), ([0, 2], 2), ([2, 1, 0], 1), ([1, 130, 2], 130)])
def test_the_exit_code_is_the_worst(codes: list[int], expected: int) -> None:
    assert worst(codes) == expected


@pytest.mark.slow
def test_pipelines_run_together_under_one_budget_and_a_bad_one_stops_no_other(
        tmp_path: Path) -> None:
    luna = write_pipeline(tmp_path / "luna", name="luna", scenes=SCENES)
    milo = write_pipeline(tmp_path / "milo", name="milo", scenes=SCENES)
    broken = tmp_path / "broken" / "broken.yaml"
    broken.parent.mkdir()
    broken.write_text("version: 1\nname: broken\n")  # no character, no scenes: invalid
    with Simulator(SimConfig(token=TOKEN, training_seconds=1.0, generation_seconds=0.2,
                             rpm=4, rate_window=1.0)) as sim:
        env = env_for(sim.base_url, BRIA_RUN_RPM="4", BRIA_RUN_RATE_WINDOW="1")
        done = bria(["run", str(luna), str(broken), str(milo)], env=env, cwd=tmp_path)
        stats = sim_stats(sim.base_url)
        status = bria(["status", str(luna), str(milo), "--json"], env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stderr  # the invalid file's code, the worst here
    assert "broken.yaml: error" in done.stderr
    assert f"{luna}: done: 3 new image(s)" in done.stdout
    assert f"{milo}: done: 3 new image(s)" in done.stdout
    assert "luna: " in done.stderr and "milo: " in done.stderr  # each line names its pipeline
    assert stats["rate_limited"] == 0  # two pipelines, one process, one budget
    assert stats["created"]["models"] == 2
    for name in ("luna", "milo"):
        assert (tmp_path / name / "state" / f"{name}.sqlite").exists()  # a state each
        assert len(list((tmp_path / name / "outputs").rglob("*.png"))) == 3
    assert status.returncode == 0, status.stderr
    documents = [json.loads(d) for d in status.stdout.replace("}\n{", "}\n\x00{").split("\x00")]
    assert [d["pipeline"] for d in documents] == ["luna", "milo"]


def test_each_pipeline_has_its_own_display_row() -> None:
    from runner.display.rows import LiveRows, Tagged
    from runner.events import EventKind

    board = LiveRows()
    try:
        luna, milo = board.row("luna"), board.row("milo")
        luna.emit(EventKind.PLAN, text="plan", uploads=2, scenes=["scene/a/1", "scene/b/1"])
        luna.emit(EventKind.STEP, "upload/1", kind="upload", state="done")
        luna.emit(EventKind.PHASE, name="generation", total=2)
        luna.emit(EventKind.STEP, "scene/a/1", kind="scene", state="done", path="a/1.png")
        milo.emit(EventKind.TRAINING, model_id=7, status="InProgress")
        assert luna.cells()[:5] == ["luna", "generation", "1/2", "-", "1/2"]
        assert milo.cells()[:4] == ["milo", "starting", "-", "model 7: InProgress"]
    finally:
        board.close()
    seen: list[dict[str, object]] = []

    class Recorder:
        def emit(self, event: EventKind, key: str | None = None, **data: object) -> None:
            seen.append(data)

        def close(self) -> None:
            pass

    Tagged(Recorder(), "luna").emit(EventKind.NOTICE, message="hello")
    assert seen == [{"pipeline": "luna", "message": "hello"}]


def test_a_printed_resume_command_never_carries_a_password() -> None:
    from runner.cli.run import resume_command as _resume_command

    command = _resume_command(Path("luna.yaml"), False, "postgresql://ann:hunter2@db/studio")
    assert "hunter2" not in command and "postgresql://ann:***@db/studio" in command
