"""The state on a real SQLite file: transactions, the API it belongs to, mode 0600, locks."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from runner.errors import LockHeld, StateError
from runner.state.lock import RunLock, current_holder
from runner.state.rows import ApiIdentity, PipelineKey
from runner.state.store import Store
from runner.state.tables import SCHEMA_VERSION

REAL = ApiIdentity("real", "https://engine.prod.bria-api.com")
SIM = ApiIdentity("simulated", "world-1")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store.open(tmp_path / "luna.sqlite", REAL) as opened:
        yield opened


def test_state_file_is_private(tmp_path: Path) -> None:
    Store.open(tmp_path / "s.sqlite", REAL).close()
    assert stat.S_IMODE(os.stat(tmp_path / "s.sqlite").st_mode) == 0o600


def test_state_of_another_api_is_refused(tmp_path: Path) -> None:
    Store.open(tmp_path / "s.sqlite", REAL).close()
    with pytest.raises(StateError) as err:
        Store.open(tmp_path / "s.sqlite", SIM)
    assert "belongs to https://engine.prod.bria-api.com, not the simulator (world world-1)" in str(
        err.value)


def test_state_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite", REAL) as s:
        s.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    with pytest.raises(StateError, match="reads state schemas up to"):
        Store.open(tmp_path / "s.sqlite", REAL)


def test_step_lifecycle_and_intents(store: Store) -> None:
    row = store.begin_step("project", "project", "fp1")
    intent = store.record_intent(row.id, "create_project")
    assert store.intents_of(row.id)[0].outcome is None  # committed before the POST
    store.resolve_intent(intent, "landed", remote_id="12", data={"x": 1})
    store.finish_step(row.id, remote_id="12", outputs={"name": "luna-abc"})
    current = store.load().current("project")
    assert current is not None and current.status == "done" and current.remote_id == "12"
    assert store.intents_of(row.id)[0].remote_id == "12"


def test_changed_fingerprint_gets_a_new_current_row(store: Store) -> None:
    old = store.begin_step("scene/a/1", "scene", "old")
    store.finish_step(old.id)
    new = store.begin_step("scene/a/1", "scene", "new")
    rows = store.load().steps["scene/a/1"]
    assert [(r.fingerprint, r.is_current) for r in rows] == [("old", False), ("new", True)]
    assert new.attempts == 1


def test_beginning_again_counts_attempts(store: Store) -> None:
    store.begin_step("train", "train", "fp")
    again = store.begin_step("train", "train", "fp")
    assert again.attempts == 2 and again.status == "running"


def test_second_runner_is_refused_naming_the_holder(store: Store) -> None:
    with RunLock(store, "bria-run luna.yaml"):
        with pytest.raises(LockHeld) as err:
            RunLock(store, "bria-run luna.yaml").acquire()
        assert err.value.pid == os.getpid()
        assert "bria-run unlock" in str(err.value)
    assert current_holder(store) is None


def test_dead_holders_lock_is_broken(tmp_path: Path, store: Store) -> None:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    dead_pid = int(child.stdout)
    lock = RunLock(store, "bria-run old")
    lock.acquire()
    lock._stop.set()
    with store.transaction() as conn:
        from runner.state.tables import locks
        conn.execute(locks.update().values(pid=dead_pid))
    with RunLock(store, "bria-run new"):
        holder = current_holder(store)
        assert holder is not None and holder.command == "bria-run new"
    kinds = [e["kind"] for e in store.events_since()]
    assert "lock_broken" in kinds


def test_a_file_that_is_not_a_state_gets_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.sqlite"
    bad.write_text("these are my notes, not a database")
    with pytest.raises(StateError, match="is not a SQLite database, so not a bria-run state"):
        Store.open(bad, REAL)
    assert bad.read_text() == "these are my notes, not a database"  # untouched


def test_a_database_url_nothing_answers_gets_a_clear_error() -> None:
    with pytest.raises(StateError, match=r"cannot (open|use) the state at postgresql://"):
        Store.open("postgresql://runner@127.0.0.1:9/bria", REAL,
                   pipeline=PipelineKey("luna", "luna.yaml"))


def test_meta_values_set_together_land_together(store: Store) -> None:
    """The pipeline claim is two meta values: one transaction, so a kill cannot leave half."""
    from unittest import mock

    from sqlalchemy.engine import Connection

    real = Connection.execute
    calls = {"n": 0}

    def second_write_fails(self: Connection, *args: object, **kw: object) -> object:
        calls["n"] += 1
        if calls["n"] == 3:  # update+insert of the first value went through; now the second
            raise RuntimeError("killed")
        return real(self, *args, **kw)  # type: ignore[arg-type]

    with mock.patch.object(Connection, "execute", second_write_fails), \
            pytest.raises(RuntimeError):
        store.set_meta("pipeline_name", "luna", pipeline_file="pipelines/luna.yaml")
    assert store.meta_value("pipeline_name") is None  # rolled back with the second
