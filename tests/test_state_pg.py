"""The state on a real PostgreSQL server (tests/pg.py): one database, many pipelines, each in
a schema of its own; the same promises as SQLite; versioned creation and upgrades; fencing."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psycopg
import pytest
from simrun import TOKEN, bria, env_for, posts, sim_stats, write_pipeline
from sqlalchemy import select, text

from runner.errors import LeaseLost, LockHeld, StateError, StateMissing
from runner.simulator import SimConfig, Simulator
from runner.state.lock import RunLock, current_holder
from runner.state.postgres import schema_for
from runner.state.rows import ApiIdentity, IntentOutcome, PipelineKey
from runner.state.store import Store
from runner.state.tables import SCHEMA_VERSION, intents, migrations

SIM = ApiIdentity("simulated", "world-1")
LUNA, MILO = PipelineKey("luna", "pipelines/luna.yaml"), PipelineKey("milo", "pipelines/milo.yaml")


def test_each_pipeline_has_its_own_state_in_one_database(pg_url: str) -> None:
    with Store.open(pg_url, SIM, pipeline=LUNA) as luna, \
            Store.open(pg_url, SIM, pipeline=MILO) as milo:
        step = luna.begin_step("project", "project", "fp")
        intent = luna.record_intent(step.id, "create_project")
        assert luna.intents_of(step.id)[0].outcome is None  # the intent is committed first
        luna.resolve_intent(intent, IntentOutcome.LANDED, remote_id="7")
        luna.finish_step(step.id, remote_id="7", outputs={"name": "luna"})
        assert milo.load().steps == {}
    with Store.open(pg_url, SIM, pipeline=LUNA) as again:
        row = again.load().steps["project"][0]
        assert (row.status, row.remote_id, row.outputs) == ("done", "7", {"name": "luna"})
    with psycopg.connect(pg_url) as conn:
        schemas = {r[0] for r in conn.execute("SELECT schema_name FROM bria_run.pipelines")}
    assert schemas == {schema_for(LUNA), schema_for(MILO)}


def test_a_state_never_mixes_apis_and_a_read_finds_no_state_without_creating_one(
        pg_url: str) -> None:
    Store.open(pg_url, SIM, pipeline=LUNA).close()
    with pytest.raises(StateError, match="belongs to the simulator"):
        Store.open(pg_url, ApiIdentity("real", "https://engine.prod.bria-api.com"),
                   pipeline=LUNA)
    with pytest.raises(StateMissing, match="nothing has run for this pipeline"):
        Store.open(pg_url, None, create=False, pipeline=MILO)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM bria_run.pipelines").fetchone() == (1,)


def test_the_password_of_a_url_is_never_shown(pg_url: str) -> None:
    secret = pg_url.replace("postgres@", "postgres:hunter2@")
    with Store.open(secret, SIM, pipeline=LUNA) as store:
        assert "hunter2" not in store.location and "***" in store.location


def test_a_missing_driver_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what an install without it sees
    with pytest.raises(StateError, match=r"pip install 'bria-run\[postgres\]'"):
        Store.open("postgresql://postgres@127.0.0.1:5432/x", SIM, pipeline=LUNA)


def _make_version_1(store: Store) -> None:
    """Turn a new state into what bria-run wrote before migrations existed."""
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE migrations"))
        conn.execute(text("ALTER TABLE locks DROP COLUMN expires_at"))
        conn.execute(text("UPDATE meta SET value = '1' WHERE key = 'schema_version'"))
        conn.execute(text("INSERT INTO locks (id, owner, pid, host, command, started_at, "
                          "heartbeat_at) VALUES (1, 'old', 1, 'gone', 'bria-run', 10, 10)"))


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_state_an_older_version_wrote_is_upgraded(
        engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    where = request.getfixturevalue("pg_url") if engine == "postgresql" \
        else str(tmp_path / "luna.sqlite")
    with Store.open(where, SIM, pipeline=LUNA) as store:
        store.begin_step("project", "project", "fp")
        _make_version_1(store)
    with Store.open(where, SIM, pipeline=LUNA) as store:
        with store.read() as conn:
            versions = list(conn.execute(select(migrations.c.version)).scalars())
            lapse = conn.execute(text("SELECT expires_at FROM locks")).scalar()
        assert versions == list(range(2, SCHEMA_VERSION + 1))
        assert lapse == 70.0  # the old row's heartbeat + the old 60 s silence limit
        assert store.load().meta["schema_version"] == str(SCHEMA_VERSION)
        assert "project" in store.load().steps  # nothing lost


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_state_a_newer_version_wrote_is_refused(
        engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    where = request.getfixturevalue("pg_url") if engine == "postgresql" \
        else str(tmp_path / "luna.sqlite")
    with Store.open(where, SIM, pipeline=LUNA) as store, store.engine.begin() as conn:
        conn.execute(migrations.insert().values(version=99, name="future", applied_at=0))
    with pytest.raises(StateError, match="state schema 99.*Upgrade bria-run"):
        Store.open(where, SIM, pipeline=LUNA)


def test_a_fenced_zombie_cannot_write(pg_url: str) -> None:
    """A runner whose lease lapsed (a paused machine) and was taken over on another host can
    no longer write anything: its next write is refused and nothing reaches the table."""
    with Store.open(pg_url, SIM, pipeline=LUNA) as zombie_store, \
            Store.open(pg_url, SIM, pipeline=LUNA) as heir_store:
        step = zombie_store.begin_step("project", "project", "fp")
        zombie = RunLock(zombie_store, "bria-run luna", lease=0.6, host="machine-a")
        zombie.acquire()
        zombie._stop.set()  # the machine freezes: no more renewals
        with pytest.raises(LockHeld, match="machine-a"):
            RunLock(heir_store, "bria-run luna", host="machine-b").acquire()
        time.sleep(0.7)
        with RunLock(heir_store, "bria-run luna", host="machine-b"):
            with pytest.raises(LeaseLost, match="taken over .*machine-b"):
                zombie_store.record_intent(step.id, "create_project")
            with heir_store.read() as conn:
                assert conn.execute(select(intents)).all() == []
            heir_store.record_intent(step.id, "create_project")  # the heir writes
            holder = current_holder(heir_store)
            assert holder is not None and holder.host == "machine-b"
        assert "lock_broken" in [e["kind"] for e in heir_store.events_since()]


def test_a_live_lease_on_another_host_is_waited_for_then_taken_over(pg_url: str) -> None:
    with Store.open(pg_url, SIM, pipeline=LUNA) as first, \
            Store.open(pg_url, SIM, pipeline=LUNA) as second:
        holder = RunLock(first, "bria-run luna", lease=1.0, host="machine-a")
        holder.acquire()
        holder._stop.set()
        began = time.monotonic()
        with RunLock(second, "bria-run luna", host="machine-b", wait=10):
            waited = time.monotonic() - began
        assert 0 < waited < 10  # it waited for the lapse, not for the whole wait


@pytest.mark.slow
def test_a_pipeline_runs_on_postgresql_and_a_rerun_posts_nothing(
        pg_url: str, tmp_path: Path) -> None:
    path = write_pipeline(tmp_path)
    with Simulator(SimConfig(token=TOKEN, training_seconds=1.0, generation_seconds=0.2)) as sim:
        env = env_for(sim.base_url, BRIA_RUN_STATE=pg_url)
        first = bria(["run", str(path), "-q"], env=env, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        spent = posts(sim_stats(sim.base_url))
        again = bria(["run", str(path)], env=env, cwd=tmp_path)
        assert again.returncode == 0 and "nothing to do" in again.stderr
        assert posts(sim_stats(sim.base_url)) == spent
        status = bria(["status", str(path), "--json"], env=env, cwd=tmp_path)
        assert '"state": "done"' in status.stdout and "postgresql://" in status.stdout
    assert not (tmp_path / "state").exists()  # nothing went to a SQLite file


def test_the_studio_view_of_an_empty_database_and_without_one(pg_url: str, tmp_path: Path) -> None:
    env = env_for("http://127.0.0.1:9", BRIA_RUN_STATE=pg_url)
    empty = bria(["status", "--all"], env=env, cwd=tmp_path)
    assert empty.returncode == 0 and "no pipeline has run on this database yet" in empty.stdout
    nowhere = bria(["status", "--all", "--state", str(tmp_path / "s.sqlite")], env=env,
                   cwd=tmp_path)
    assert nowhere.returncode == 2 and "give --state postgresql://" in nowhere.stderr
