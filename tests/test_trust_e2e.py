"""Numbers a user can trust, end to end against the simulator: one state per file from any
folder, a lost state never pays twice, true costs, remembered decisions, `clean`."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
from pathlib import Path
from typing import Any

import pytest
from simrun import TOKEN, bria, env_for, make_image, posts, sim_stats, spawn, write_pipeline

from runner.engine.planned import IMAGE_SECONDS, TRAINING_SECONDS
from runner.simulator import SimConfig, Simulator

pytestmark = pytest.mark.slow
PAID = ("projects", "datasets", "models", "trainings_started")


@pytest.fixture
def sim() -> Simulator:
    with Simulator(SimConfig(token=TOKEN, training_seconds=1.0, generation_seconds=0.2)) as s:
        yield s


def run(path: Path, sim: Simulator, *args: str, cwd: Path | None = None) -> Any:
    return bria(["run", str(path), *args], env=env_for(sim.base_url), cwd=cwd or path.parent)


def created(sim: Simulator) -> dict[str, int]:
    return sim_stats(sim.base_url)["created"]  # type: ignore[no-any-return]


def pngs(folder: Path) -> dict[str, str]:
    root = folder / "outputs"
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.png")) if "previous" not in p.parts}


def forget_state(folder: Path) -> None:
    for file in (folder / "state").glob("luna.sqlite*"):
        file.unlink()


def test_a_lost_state_adopts_everything_by_name_and_pays_nothing(
    tmp_path: Path, sim: Simulator,
) -> None:
    path = write_pipeline(tmp_path)
    first = run(path, sim)
    assert first.returncode == 0, first.stderr
    before, images = created(sim), pngs(tmp_path)
    calls = posts(sim_stats(sim.base_url))
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "state" / "luna.sqlite").stat().st_mode) == 0o600
    assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "outputs").rglob("*.png")} \
        == {0o666 & ~mask}
    forget_state(tmp_path)
    again = run(path, sim)
    assert again.returncode == 0, again.stderr
    after = created(sim)
    assert {k: after[k] for k in PAID} == {k: before[k] for k in PAID}, again.stderr
    assert after["generation_jobs"] == before["generation_jobs"]
    assert pngs(tmp_path) == images
    assert "0 new image(s)" in again.stdout
    model = [line for line in again.stderr.splitlines() if "adopted model" in line]
    assert model and model[0].endswith("found at Bria by name"), again.stderr
    # Nothing but look-ups: no POST that costs or creates anything was sent.
    new_posts = {k: v - calls.get(k, 0) for k, v in posts(sim_stats(sim.base_url)).items()}
    assert {k: v for k, v in new_posts.items() if v} == {}


def test_a_lost_state_regenerates_only_the_images_that_were_altered(
    tmp_path: Path, sim: Simulator,
) -> None:
    path = write_pipeline(tmp_path)
    assert run(path, sim, "-q").returncode == 0
    jobs = created(sim)["generation_jobs"]
    forget_state(tmp_path)
    (tmp_path / "outputs" / "reading" / "2.png").write_bytes(b"not the image any more")
    again = run(path, sim, "-q")
    assert again.returncode == 0, again.stderr
    assert created(sim)["generation_jobs"] == jobs + 1
    assert "1 new image(s)" in again.stdout


def interrupt_when(path: Path, sim: Simulator, event: str, extra: tuple[str, ...] | list[str] = (),
                   **match: Any) -> None:
    """Run, and send Ctrl-C once bria-run's own `--json` events show ``event``."""
    process = spawn(["run", str(path), "--json", *extra], env=env_for(sim.base_url),
                    cwd=path.parent)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            seen = json.loads(line)
            if seen.get("event") == event and all(seen.get(k) == v for k, v in match.items()):
                process.send_signal(signal.SIGINT)
                break
        assert process.wait(timeout=60) == 130
    finally:
        if process.poll() is None:
            process.kill()


def test_after_ctrl_c_in_training_status_and_plan_count_the_training_once(
    tmp_path: Path, sim: Simulator,
) -> None:
    sim.configure(training_seconds=60.0)
    path = write_pipeline(tmp_path)
    interrupt_when(path, sim, "training", status="InProgress")
    env = env_for(sim.base_url)
    status = json.loads(bria(["status", str(path), "--json"], env=env, cwd=tmp_path).stdout)
    assert status["credits_spent"] == sim_stats(sim.base_url)["credits"] == 80
    assert status["paid"] == {"trainings": 1, "images": 0}
    shown = json.loads(bria(["plan", str(path), "--json"], env=env, cwd=tmp_path).stdout)
    train = next(s for s in shown["steps"] if s["key"] == "train")
    assert train["action"] == "resume" and train["credits"] == 0
    assert shown["estimate"]["credits"] == 3 * 3  # only the images are left to pay
    assert shown["estimate"]["seconds"] < TRAINING_SECONDS + 3 * IMAGE_SECONDS
    text = bria(["plan", str(path)], env=env, cwd=tmp_path).stdout
    assert "paid already" in text


def read_only(command: str, path: Path, sim: Simulator, *args: str) -> Any:
    result = bria([command, str(path), *args], env=env_for(sim.base_url), cwd=path.parent)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if "--json" in args else result.stdout


def test_an_undone_retrain_says_so_and_reports_the_model_really_used(
    tmp_path: Path, sim: Simulator,
) -> None:
    path = write_pipeline(tmp_path)
    assert run(path, sim, "-q").returncode == 0
    first = read_only("outputs", path, sim, "--json")["model_id"]
    extra = tmp_path / "training" / "09.png"
    make_image(extra, 9)
    assert run(path, sim, "-q", "--retrain").returncode == 0
    second = read_only("outputs", path, sim, "--json")["model_id"]
    assert second != first
    extra.unlink()  # the change is undone: the first model fits the file again
    back = run(path, sim)
    assert back.returncode == 0, back.stderr
    said = back.stderr.index(f"switching back to an earlier model: back to earlier inputs: "
                             f"model {first}")
    assert said < back.stderr.index("== generation")
    assert f"instead of model {second}" in back.stderr
    outputs = read_only("outputs", path, sim, "--json")
    assert outputs["model_id"] == first
    assert {f["model_id"] for f in outputs["files"]} == {first}
    assert read_only("status", path, sim, "--json")["model"]["id"] == first
    gallery = json.loads((tmp_path / "outputs" / "index.json").read_text())
    assert gallery["model"]["id"] == first
    # Each model's images were moved aside in turn, each with what it was beside it.
    previous = [p for p in outputs["previous"] if p["scene"] == "reading"]
    assert {p["model_id"] for p in previous} == {first, second}
    assert all(p["prompt"] == "Luna reading by the fire" and p["exists"] for p in previous)
    assert all(Path(p["path"]).with_suffix(".json").exists() for p in previous)


def test_keep_model_is_remembered_until_the_training_inputs_change_again(
    tmp_path: Path, sim: Simulator,
) -> None:
    path = write_pipeline(tmp_path)
    assert run(path, sim, "-q").returncode == 0
    make_image(tmp_path / "training" / "09.png", 9)
    refused = run(path, sim)
    assert refused.returncode != 0 and "stale" in refused.stderr
    assert "credits" not in refused.stderr.replace("about 50-100 credits", "")  # no cost shown
    kept = run(path, sim, "--keep-model")
    assert kept.returncode == 0, kept.stderr
    assert "--keep-model is remembered" in kept.stderr
    later = run(path, sim)
    assert later.returncode == 0, later.stderr
    assert "as --keep-model chose" in later.stderr
    assert "Blocked" not in read_only("plan", path, sim)
    make_image(tmp_path / "training" / "10.png", 10)
    again = run(path, sim)
    assert again.returncode != 0 and "stale" in again.stderr
    assert created(sim)["trainings_started"] == 1


DELETES = ("DELETE /v1/tailored-gen/models/{id}", "DELETE /v1/tailored-gen/datasets/{id}")


def deletes(sim: Simulator) -> list[int]:
    calls = sim_stats(sim.base_url)["calls"]
    return [calls.get(route, 0) for route in DELETES]


def test_clean_lists_then_deletes_what_a_retrain_superseded_and_only_once(
    tmp_path: Path, sim: Simulator,
) -> None:
    path = write_pipeline(tmp_path)
    assert run(path, sim, "-q").returncode == 0
    first = read_only("outputs", path, sim, "--json")["model_id"]
    make_image(tmp_path / "training" / "09.png", 9)
    assert run(path, sim, "-q", "--retrain").returncode == 0
    second = read_only("outputs", path, sim, "--json")["model_id"]
    listed = read_only("clean", path, sim)  # not a terminal: a dry run
    assert f"model {first} (luna-" in listed and "dataset 2001 (luna-" in listed
    assert "superseded" in listed and "dry run: nothing deleted" in listed
    assert f"model {second}" not in listed
    assert deletes(sim) == [0, 0]
    done = read_only("clean", path, sim, "--yes")
    assert f"deleted model {first}" in done and "deleted dataset 2001" in done
    assert deletes(sim) == [1, 1]
    assert "nothing to clean" in read_only("clean", path, sim, "--yes")
    assert deletes(sim) == [1, 1]
    assert run(path, sim, "-q").returncode == 0  # the model in use is still there


def test_clean_deletes_a_failed_training_and_never_one_in_progress(
    tmp_path: Path, sim: Simulator,
) -> None:
    sim.configure(fail_training=True)
    path = write_pipeline(tmp_path)
    assert run(path, sim, "-q").returncode == 1
    sim.configure(fail_training=False, training_seconds=60.0)
    interrupt_when(path, sim, "training", status="InProgress", extra=["--retrain"])
    make_image(tmp_path / "training" / "09.png", 9)
    interrupt_when(path, sim, "training", status="InProgress", extra=["--retrain"])
    listed = read_only("clean", path, sim)
    assert "model 4001 (luna-" in listed and "its training failed" in listed
    assert "model 4002 (luna-" in listed  # superseded while it still trains
    result = bria(["clean", str(path), "--yes"], env=env_for(sim.base_url), cwd=tmp_path)
    assert result.returncode == 1
    assert "deleted model 4001" in result.stdout
    assert "kept model 4002: its training is in progress (Bria refuses to delete it: 409)" \
        in result.stdout
    assert "model 4003" not in result.stdout  # the one in use


def test_the_same_file_from_two_folders_uses_one_state_and_pays_once(
    tmp_path: Path, sim: Simulator,
) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    path = write_pipeline(tmp_path / "repo" / "pipelines")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    first = run(Path("pipelines/luna.yaml"), sim, "-q", cwd=tmp_path / "repo")
    assert first.returncode == 0, first.stderr
    again = run(path, sim, cwd=elsewhere)
    assert again.returncode == 0, again.stderr
    assert "0 new image(s)" in again.stdout and "nothing to do" in again.stderr
    assert {k: created(sim)[k] for k in PAID} == dict.fromkeys(PAID, 1)
    assert (tmp_path / "repo" / "state" / "luna.sqlite").exists()
    assert not (elsewhere / "state").exists()
    status = read_only("status", path, sim, "--json")
    assert status["state"] == str(tmp_path / "repo" / "state" / "luna.sqlite")


def test_a_state_made_for_one_file_refuses_another_from_any_folder(
    tmp_path: Path, sim: Simulator,
) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    path = write_pipeline(tmp_path / "repo" / "pipelines")
    assert run(path, sim, "-q", cwd=tmp_path).returncode == 0
    other = write_pipeline(tmp_path / "repo" / "old")  # also named luna: the same default state
    refused = run(other, sim, cwd=other.parent)
    assert refused.returncode != 0
    assert "is the state of pipelines/luna.yaml (pipeline luna), not of old/luna.yaml" \
        in refused.stderr
    assert {k: created(sim)[k] for k in PAID} == dict.fromkeys(PAID, 1)
    shown = bria(["status", str(other)], env=env_for(sim.base_url), cwd=tmp_path)
    assert shown.returncode != 0 and "a state serves one pipeline file" in shown.stderr
