"""Legacy (light/max), honestly: warned about, and a retired route stops the run with a
message that says so and what to do, losing nothing. Also: why a training failed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from simrun import REPO
from test_published_fields import FAST, run_in_process

from runner.bria.errors import ApiError
from runner.bria.failures import failure_reasons
from runner.bria.legacy import is_retired_answer
from runner.cli import main
from runner.errors import LegacyRetired, TrainingFailed
from runner.simulator import SimConfig, Simulator
from runner.state.store import Store

RETIRED_TEXT = (
    "POST /v1/tailored-gen/generate_prefix: HTTP 404: Not Found. Bria no longer serves this "
    "legacy (light/max) route: legacy model support ended on 2026-07-01. Train the character "
    "on fibo instead: set `training.version: fibo` and run again (a new training, about "
    "50-100 credits). Every finished step and downloaded image is kept.")


@pytest.fixture()
def legacy(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "pipelines", tmp_path / "pipelines")
    return tmp_path / "pipelines" / "luna-legacy.yaml"


def test_a_retired_legacy_route_stops_the_run_and_keeps_what_was_done(
    legacy: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite"
    with Simulator(SimConfig(retire_legacy=True, **FAST)) as sim:  # type: ignore[arg-type]
        with pytest.raises(LegacyRetired) as caught:
            run_in_process(legacy, sim, state)
        assert str(caught.value) == RETIRED_TEXT
        assert (caught.value.status, caught.value.path) == (404, "/v1/tailored-gen/generate_prefix")
    with Store.open(state, None) as store:
        recorded = store.load()
    done = {key for key in ("project", "dataset") if recorded.current(key).status == "done"}
    assert done == {"project", "dataset"}
    assert recorded.current("identity").status == "failed"


def test_a_retired_generation_route_stops_the_run_and_keeps_earlier_images(
    legacy: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite"
    with Simulator(SimConfig(**FAST)) as sim:  # type: ignore[arg-type]
        run_in_process(legacy, sim, state)
        before = sorted(p.relative_to(legacy.parent) for p in legacy.parent.rglob("outputs/**/*.png"))
        legacy.write_text(legacy.read_text().replace(
            "outputs:", "  - name: meadow\n    prompt: Luna in a meadow\noutputs:"))
        sim.configure(retire_legacy=True)
        # not one failed scene among others: the run stops, as every later one would fail too
        with pytest.raises(LegacyRetired) as caught:
            run_in_process(legacy, sim, state)
    assert str(caught.value).startswith(
        "POST /v1/text-to-image/tailored/{id}: HTTP 404: Not Found. Bria no longer serves "
        "this legacy (light/max) route")
    after = sorted(p.relative_to(legacy.parent) for p in legacy.parent.rglob("outputs/**/*.png"))
    assert before and after == before


def test_a_retired_training_version_is_told_as_such(tmp_path: Path) -> None:
    with Simulator(SimConfig(retire_legacy=True, **FAST)) as sim:  # type: ignore[arg-type]
        from runner.bria.client import BriaClient

        with BriaClient(sim.base_url, sim.config.token, rpm=None) as client, \
                pytest.raises(LegacyRetired) as caught:
            client.create_model(name="m", dataset_id=2001, training_mode="fully_automated",
                                training_version="light")
    assert caught.value.status == 400
    assert "training_version is no longer supported" in str(caught.value)


def test_the_cli_run_ends_with_the_message_and_exit_1(legacy: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with Simulator(SimConfig(retire_legacy=True, **FAST)) as sim:  # type: ignore[arg-type]
        monkeypatch.setenv("BRIA_API_URL", sim.base_url)
        monkeypatch.setenv("BRIA_API_TOKEN", sim.config.token)
        monkeypatch.chdir(legacy.parent)
        result = CliRunner().invoke(main, ["run", str(legacy), "-q"])
    assert result.exit_code == 1
    assert RETIRED_TEXT in result.stderr


@pytest.mark.parametrize(("status", "text", "retired"), [
    (404, "Not Found", True), (410, "Gone", True),
    (400, "training_version light is not supported anymore", True),
    (422, "This endpoint is deprecated", True),
    (400, "prompt is required", False), (409, "conflict", False), (500, "not supported", False),
], ids=["404", "410", "400-not-supported", "422-deprecated", "400-other", "409", "500"])
def test_which_answers_mean_retired(status: int, text: str, retired: bool) -> None:
    assert is_retired_answer(ApiError(status, "POST", "/v1/reimagine", text)) is retired


def test_validate_and_plan_warn_about_legacy_models(legacy: Path) -> None:
    warning = ("warning: training.version: light is a legacy model: Bria ended legacy model "
               "support on 2026-07-01")
    assert warning in CliRunner().invoke(main, ["validate", str(legacy)]).stderr
    planned = CliRunner().invoke(main, ["plan", str(legacy), "--simulate"])
    assert planned.exit_code == 0 and warning in planned.stderr
    data = json.loads(CliRunner().invoke(main, ["plan", str(legacy), "--json"]).stdout)
    assert "training.version" in [w["path"] for w in data["warnings"]]


def test_fibo_is_not_warned_about(tmp_path: Path) -> None:
    shutil.copytree(REPO / "pipelines", tmp_path / "pipelines")
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "pipelines" / "luna.yaml")])
    assert "legacy" not in result.stderr


@pytest.mark.slow
def test_simulate_retire_legacy_answers_like_a_retired_endpoint() -> None:
    command = [sys.executable, "-m", "runner", "simulate", "--port", "0", "--token", "t-1234",
               "--retire-legacy"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = [process.stdout.readline() for _ in range(2)][1].strip().split("=", 1)[1]
        headers = {"api_token": "t-1234"}
        gone = httpx.post(f"{url}/v1/reimagine", headers=headers, json={"prompt": "x"})
        assert (gone.status_code, gone.json()) == (404, {"message": "Not Found"})
        model = httpx.post(f"{url}/v1/tailored-gen/models", headers=headers, json={
            "name": "m", "dataset_id": 1, "training_version": "max"})
        assert model.status_code == 400
        assert model.json()["errors"][0]["field_name"] == "training_version"
        # and, like Bria's typed servers, it refuses a wrong-typed field
        typed = httpx.post(f"{url}/v2/image/generate/tailored", headers=headers,
                           json={"tailored_model_id": 4001, "prompt": "Luna"})
        assert typed.status_code == 400
        assert typed.json()["error"]["message"] == "tailored_model_id: must be of type string"
    finally:
        process.terminate()
        process.communicate(timeout=30)


# --- why a training failed ----------------------------------------------------------------


def test_a_failed_training_shows_every_reason_and_the_model_id(tmp_path: Path) -> None:
    shutil.copytree(REPO / "pipelines", tmp_path / "pipelines")
    sim = Simulator(SimConfig(fail_training=True, **FAST))  # type: ignore[arg-type]
    with sim, pytest.raises(TrainingFailed) as caught:
        run_in_process(tmp_path / "pipelines" / "luna.yaml", sim, tmp_path / "s.sqlite")
    assert str(caught.value) == (
        "training failed for model 4001 (Failed): error_message: Training failed: the "
        "simulator was told to fail it. Run again with --retrain to start a new training "
        "(about 50-100 credits).")


def test_failure_reasons_read_every_explaining_field() -> None:
    model = {"id": 7, "status": "Failed", "error_message": "  out of\nmemory ",
             "error": {"code": 500, "message": "trainer crashed"}, "status_message": "",
             "failure_reasons": ["too few images", "blurry"], "name": "luna-m"}
    assert failure_reasons(model) == {
        "error_message": "out of memory", "error": "code 500, trainer crashed",
        "failure_reasons": "too few images; blurry"}
