"""A state file that exists is never started over: empty, truncated, damaged, foreign or newer
states stop `run`, `plan` and `status` with exit 2, name the file, and stay byte-identical."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from simrun import write_pipeline

from runner import __version__
from runner.cli import main
from runner.errors import StateTooNew, StateUnusable
from runner.state.rows import ApiIdentity
from runner.state.store import Store
from runner.state.tables import SCHEMA_VERSION

REAL = ApiIdentity("real", "https://engine.prod.bria-api.com")


def _real_state(path: Path) -> Path:
    with Store.open(path, REAL) as store:
        row = store.begin_step("project", "project", "fp")
        store.finish_step(row.id, remote_id="12")
    return path


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _truncated(path: Path) -> None:
    data = _real_state(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _cut_mid_page(path: Path) -> None:
    data = _real_state(path).read_bytes()
    path.write_bytes(data[:-100])


def _damaged(path: Path) -> None:
    """A whole file whose b-tree pages were overwritten: only quick_check sees it."""
    data = bytearray(_real_state(path).read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for start in range(page, len(data), page):
        data[start:start + 8] = b"\xee" * 8
    path.write_bytes(bytes(data))


def _foreign(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE recipes (name TEXT)")
        conn.execute("INSERT INTO recipes VALUES ('soup')")
    conn.close()


def _text(path: Path) -> None:
    path.write_text("these are my notes, not a database")


CASES: list[tuple[str, Callable[[Path], None], str]] = [
    ("empty", _empty, r"is empty \(0 bytes\)"),
    ("truncated", _truncated, "is truncated"),
    ("cut-mid-page", _cut_mid_page, "is truncated"),
    ("damaged", _damaged, "quick_check|is damaged"),
    ("foreign", _foreign, r"is not a bria-run state \(its tables: recipes\)"),
    ("text", _text, "is not a SQLite database"),
]


@pytest.mark.parametrize(("make", "why"), [(m, w) for _, m, w in CASES],
                         ids=[c[0] for c in CASES])
def test_an_unusable_state_is_refused_and_left_untouched(
        tmp_path: Path, make: Callable[[Path], None], why: str) -> None:
    path = tmp_path / "luna.sqlite"
    make(path)
    before = path.read_bytes()
    for _ in range(2):  # a second try finds it exactly as the first left it
        with pytest.raises(StateUnusable, match=why) as err:
            Store.open(path, REAL)
        assert err.value.location == str(path) and err.value.exit_code == 2
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["luna.sqlite"]


@pytest.mark.parametrize("command", ["run", "plan", "status"])
def test_commands_stop_with_exit_2_naming_the_file_and_the_way_on(
        tmp_path: Path, command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = write_pipeline(tmp_path)
    state = tmp_path / "state" / "luna.sqlite"
    state.parent.mkdir()
    state.write_bytes(b"")
    monkeypatch.setenv("BRIA_API_TOKEN", "a-token-never-used")
    monkeypatch.setenv("BRIA_API_URL", "http://127.0.0.1:9")  # nothing may be sent anyway
    result = CliRunner().invoke(main, [command, str(pipeline), "--state", str(state)])
    assert result.exit_code == 2, result.output
    assert f"the state {state} is empty (0 bytes); bria-run leaves it untouched" in result.stderr
    assert f"mv {state} {state}.damaged" in result.stderr
    assert "finds the project, dataset and model already at Bria by name" in result.stderr
    assert state.read_bytes() == b""


def test_a_newer_state_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = _real_state(tmp_path / "luna.sqlite")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                     (str(SCHEMA_VERSION + 1),))
        conn.execute("UPDATE meta SET value = '9.0.0' WHERE key = 'bria_run_version'")
    conn.close()
    before = path.read_bytes()
    for api in (REAL, None):  # `run` and the read-only commands alike
        with pytest.raises(StateTooNew) as err:
            Store.open(path, api)
        assert err.value.exit_code == 2
    assert str(err.value) == (
        f"the state {path} was written by bria-run 9.0.0 (state schema {SCHEMA_VERSION + 1}); "
        f"this is bria-run {__version__}, which reads state schemas up to {SCHEMA_VERSION}. "
        "Upgrade bria-run to use it; the state is left untouched.")
    assert path.read_bytes() == before


def test_a_new_state_records_the_version_that_wrote_it(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite", REAL) as store:
        assert store.load().meta["bria_run_version"] == __version__


def test_a_healthy_state_opens_again(tmp_path: Path) -> None:
    path = _real_state(tmp_path / "luna.sqlite")
    with Store.open(path, REAL) as store:
        current = store.load().current("project")
        assert current is not None and current.remote_id == "12"


KILL_WHILE_CREATING = """
import os, signal, sys
from sqlalchemy import event
from runner.state import tables
from runner.state.store import Store

def die(*_args, **_kw):
    os.kill(os.getpid(), signal.SIGKILL)

# Killed the moment the table named on the command line is created: the others may or may
# not exist yet, as with a Ctrl-C or a reboot in a run's first second.
event.listen(tables.metadata.tables[sys.argv[2]], "after_create", die)
Store.open(sys.argv[1], None)
"""


@pytest.mark.parametrize("table", ["steps", "locks", "migrations"])
def test_a_state_killed_while_being_created_is_absent_not_half_made(
        tmp_path: Path, table: str) -> None:
    """A kill at any moment of a state's creation leaves no state, so the next run creates a
    whole one; created in place, a half-made file was refused by every later run."""
    path = tmp_path / "state" / "luna.sqlite"
    killed = subprocess.run([sys.executable, "-c", KILL_WHILE_CREATING, str(path), table],
                            cwd=Path(__file__).resolve().parent.parent, timeout=60, check=False)
    assert killed.returncode == -signal.SIGKILL
    assert not path.exists()
    with Store.open(path, REAL) as store:
        assert store.load().meta["bria_run_version"] == __version__
    assert sorted(p.name for p in path.parent.iterdir()) == ["luna.sqlite"]  # leftovers swept


KILL_WHILE_UPGRADING = """
import os, signal, sys
from runner.state import migrations
from runner.state.store import Store

def die(*_args, **_kw):
    os.kill(os.getpid(), signal.SIGKILL)

migrations._record = die  # killed after the upgrade's ALTER TABLE, before its record
Store.open(sys.argv[1], None)
"""


def test_an_upgrade_killed_midway_leaves_the_state_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "luna.sqlite"
    with Store.open(path, REAL) as store, store.engine.begin() as conn:
        # what bria-run wrote before migrations existed
        conn.exec_driver_sql("DROP TABLE migrations")
        conn.exec_driver_sql("ALTER TABLE locks DROP COLUMN expires_at")
        conn.exec_driver_sql("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    killed = subprocess.run([sys.executable, "-c", KILL_WHILE_UPGRADING, str(path)],
                            cwd=Path(__file__).resolve().parent.parent, timeout=60, check=False)
    assert killed.returncode == -signal.SIGKILL
    with sqlite3.connect(path) as conn:
        assert "expires_at" not in {row[1] for row in conn.execute("PRAGMA table_info(locks)")}
    with Store.open(path, REAL) as store:
        assert store.load().meta["schema_version"] == str(SCHEMA_VERSION)
