"""Typed states: a value outside the enums is refused where it used to pass silently."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from runner.cli import main
from runner.engine.planned import WORK_ACTIONS, Action
from runner.errors import StateError
from runner.events import EventKind
from runner.state.rows import ApiIdentity, IntentOutcome, StepKind, StepStatus
from runner.state.store import Store
from runner.state.tables import steps

REAL = ApiIdentity("real", "https://engine.prod.bria-api.com")


def test_a_misspelt_step_kind_is_refused(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite", REAL) as store, pytest.raises(ValueError):
        store.begin_step("upload/a.png", "uplaod", "fp")  # type: ignore[arg-type]


def test_a_misspelt_intent_outcome_is_refused(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite", REAL) as store:
        row = store.begin_step("project", StepKind.PROJECT, "fp")
        intent = store.record_intent(row.id, "create_project")
        with pytest.raises(ValueError):
            store.resolve_intent(intent, "landd")  # type: ignore[arg-type]
        store.resolve_intent(intent, IntentOutcome.LANDED, remote_id="101")
        assert store.intents_of(row.id)[0].outcome is IntentOutcome.LANDED


def test_rows_read_back_as_enums(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite", REAL) as store:
        row = store.begin_step("scene/forest/1", StepKind.SCENE, "fp")
        store.finish_step(row.id, remote_id="r")
        back = store.load().current("scene/forest/1")
    assert back is not None
    assert back.kind is StepKind.SCENE and back.status is StepStatus.DONE


def test_a_stored_status_outside_the_enum_is_named_not_guessed(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite", REAL) as store:
        store.begin_step("project", StepKind.PROJECT, "fp")
        with store.transaction() as conn:
            conn.execute(update(steps).values(status="finished"))
        with pytest.raises(StateError) as caught:
            store.load()
    assert "holds a step this bria-run does not know" in str(caught.value)
    assert "'finished' is not a valid StepStatus" in str(caught.value)


def test_work_actions_are_the_ones_that_run() -> None:
    assert WORK_ACTIONS == {Action.CREATE, Action.RESUME, Action.CHANGED}
    assert Action("kept") is Action.KEPT
    with pytest.raises(ValueError):
        Action("skip")
    assert EventKind("finished") is EventKind.FINISHED


def test_debug_shows_the_traceback_of_an_unexpected_error_without_the_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    import runner.app

    def explode(*_args: object, **_kw: object) -> None:
        raise RuntimeError("boom with secret-token-123 inside")

    monkeypatch.setattr(runner.app, "snapshot", explode)
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("version: 1\n")
    env = {"BRIA_API_TOKEN": "secret-token-123"}
    plain = CliRunner().invoke(main, ["status", str(pipeline)], env=env)
    debug = CliRunner().invoke(main, ["status", str(pipeline)], env={**env, "BRIA_RUN_DEBUG": "1"})
    assert plain.exit_code == debug.exit_code == 1
    assert "Traceback" not in plain.output and "internal error: RuntimeError" in plain.output
    assert "Traceback (most recent call last)" in debug.output and "explode" in debug.output
    assert "secret-token-123" not in plain.output + debug.output


def test_planning_does_not_load_the_http_stack() -> None:
    """plan/status/outputs and the start of a run import the app, not httpx: start-up stays fast
    (the S5 benchmark's goal) and a file that needs no request sends none."""
    import subprocess
    import sys

    code = "import sys, runner.app, runner.cli; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
