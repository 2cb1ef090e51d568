"""`status`, `outputs`, `plan` and `unlock` after a real run against the simulator: their JSON
parses and agrees with the files on disk and with what the simulator charged, and every
command finds the same state a run uses."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from simrun import TOKEN, bria, env_for, sim_stats, write_pipeline

from runner import __version__
from runner.cli import main
from runner.simulator import SimConfig, Simulator
from runner.state.fingerprint import derived_seed
from runner.state.lock import RunLock, current_holder
from runner.state.store import Store

SCENES: list[dict[str, Any]] = [
    {"name": "forest", "reference": "scenes/forest.png", "prompt": "Luna in a forest"},
    {"name": "reading", "prompt": "Luna reading by the fire", "variations": 2, "seed": 7},
]


@dataclass(frozen=True)
class Finished:
    folder: Path
    path: Path
    stats: dict[str, Any]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Finished]:
    """One pipeline run to the end (default state: state/luna.sqlite under its folder)."""
    folder = tmp_path_factory.mktemp("finished")
    path = write_pipeline(folder, scenes=SCENES)
    with Simulator(SimConfig(token=TOKEN, training_seconds=1.0, generation_seconds=0.1)) as sim:
        result = bria(["run", str(path), "-q"], env=env_for(sim.base_url), cwd=folder)
        assert result.returncode == 0, result.stderr
        yield Finished(folder, path, sim_stats(sim.base_url))


def invoke(*args: str, code: int = 0, stdin: str | None = None) -> Result:
    result = CliRunner().invoke(main, list(args), input=stdin)
    assert result.exit_code == code, (result.output, result.exception)
    return result


def as_json(*args: str, code: int = 0) -> Any:
    return json.loads(invoke(*args, "--json", code=code).stdout)


@pytest.fixture
def in_folder(finished: Finished, monkeypatch: pytest.MonkeyPatch) -> Finished:
    """The finished run's folder as the current folder, with no state in the environment."""
    monkeypatch.chdir(finished.folder)
    monkeypatch.delenv("BRIA_RUN_STATE", raising=False)
    return finished


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_outputs_json_agrees_with_the_files_on_disk(in_folder: Finished) -> None:
    data = as_json("outputs", "luna.yaml")
    on_disk = {str(p): sha(p) for p in (in_folder.folder / "outputs").rglob("*.png")}
    assert {f["path"]: f["sha256"] for f in data["files"]} == on_disk
    assert all(f["exists"] for f in data["files"])
    seeds = {(f["scene"], f["variation"]): f["seed"] for f in data["files"]}
    assert seeds == {("forest", 1): derived_seed("luna", "forest", 1),
                     ("reading", 1): 7, ("reading", 2): 8}
    assert isinstance(data["model_id"], int)


def test_status_json_agrees_with_outputs_and_what_was_charged(in_folder: Finished) -> None:
    status = as_json("status", "luna.yaml")
    files = {f["path"] for f in as_json("outputs", "luna.yaml")["files"]}
    assert {s["key"]: s["state"] for s in status["scenes"]} == {
        "scene/forest/1": "done", "scene/reading/1": "done", "scene/reading/2": "done"}
    assert {s["output"] for s in status["scenes"]} == files
    assert all(step["state"] == "done" for step in status["training_steps"])
    assert status["model"]["id"] == as_json("outputs", "luna.yaml")["model_id"]
    assert status["model"]["status"] == "Completed"
    assert status["model"]["elapsed_seconds"] > 0
    assert status["credits_spent"] == in_folder.stats["credits"]
    assert status["lock"] is None
    assert status["state"] == str(in_folder.folder.resolve() / "state" / "luna.sqlite")
    text = invoke("status", "luna.yaml").stdout
    assert "Completed" in text and "credits spent: 89 (1 training(s), 3 image(s)" in text


LOCATIONS = [
    pytest.param(lambda f: [], {}, id="default"),
    pytest.param(lambda f: ["--state", str(f / "state" / "luna.sqlite")], {}, id="state-file"),
    pytest.param(lambda f: ["--state", str(f / "state")], {}, id="state-folder"),
    pytest.param(lambda f: [], {"BRIA_RUN_STATE": "state"}, id="env-folder"),
]
COMMANDS = [["plan", "--json"], ["status", "--json"], ["outputs", "--json"], ["unlock"]]


@pytest.mark.parametrize(("where", "env"), LOCATIONS)
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_every_command_finds_the_state_a_run_uses(
    in_folder: Finished, monkeypatch: pytest.MonkeyPatch, where: Any, env: dict[str, str],
    command: list[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = invoke(command[0], "luna.yaml", *where(in_folder.folder), *command[1:]).stdout
    if command[0] == "unlock":
        assert out.endswith("luna.sqlite is not locked.\n")
        return
    data = json.loads(out)
    seen = data.get("files") or data.get("scenes") or data.get("steps")
    assert seen and all(s.get("action", "done") == "done" for s in seen)


def test_a_command_with_another_state_sees_nothing_done(
    in_folder: Finished, tmp_path: Path
) -> None:
    data = as_json("plan", "luna.yaml", "--state", str(tmp_path / "other.sqlite"))
    assert data["has_work"] and {s["action"] for s in data["steps"]} == {"create"}
    assert not (tmp_path / "other.sqlite").exists()  # plan creates no state


@pytest.mark.parametrize(("edit", "code"), [
    pytest.param(None, 0, id="nothing-to-do-in-a-moved-copy-of-the-folder"),
    pytest.param(("Luna reading by the fire", "Luna reading in bed"), 2, id="work-to-do"),
    pytest.param(("version: 1", "version: 99"), 1, id="invalid-file-is-an-error"),
])
def test_plan_detailed_exitcode(
    in_folder: Finished, tmp_path: Path, edit: tuple[str, str] | None, code: int
) -> None:
    path = tmp_path / "luna.yaml"
    shutil.copytree(in_folder.folder, tmp_path, dirs_exist_ok=True)
    if edit is not None:
        path.write_text(path.read_text().replace(*edit))
    state = str(in_folder.folder / "state")
    invoke("plan", str(path), "--state", state, "--detailed-exitcode", code=code)
    if code != 1:
        data = as_json("plan", str(path), "--state", state)
        assert data["has_work"] is (code == 2)
        assert data["estimate"]["credits"] == (6 if code == 2 else 0)  # two variations


def test_version() -> None:
    assert invoke("--version").stdout.strip() == f"bria-run, version {__version__}"


def all_commands() -> list[tuple[str, click.Command]]:
    return [("bria-run", main), *((name, cmd) for name, cmd in sorted(main.commands.items()))]


@pytest.mark.parametrize(("name", "command"), all_commands(), ids=[n for n, _ in all_commands()])
def test_every_command_and_option_has_help(name: str, command: click.Command) -> None:
    assert command.help and command.help.strip(), f"{name} has no help text"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts[0]} has no help text"
    args = ["--help"] if command is main else [name, "--help"]
    assert "Usage:" in invoke(*args).stdout


@pytest.fixture
def held(in_folder: Finished) -> Iterator[Store]:
    """The finished run's state, locked by this (live) process."""
    with Store.open(in_folder.folder / "state" / "luna.sqlite", None) as store, \
            RunLock(store, "bria-run luna.yaml --retrain"):
        yield store


def test_status_shows_who_is_running(held: Store) -> None:
    lock = as_json("status", "luna.yaml")["lock"]
    assert lock["pid"] == os.getpid() and lock["command"] == "bria-run luna.yaml --retrain"


def test_unlock_shows_what_it_breaks_and_asks_first(held: Store) -> None:
    refused = invoke("unlock", "luna.yaml", code=1, stdin="n\n").stdout
    assert f"locked by pid {os.getpid()}" in refused and "`bria-run luna.yaml --retrain`" in refused
    assert "since" in refused and current_holder(held) is not None
    broken = invoke("unlock", "luna.yaml", "--yes").stdout
    assert f"locked by pid {os.getpid()}" in broken and broken.endswith("lock broken.\n")
    assert current_holder(held) is None
