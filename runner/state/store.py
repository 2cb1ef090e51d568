"""The transactions the engine needs, on the tables of ``runner.state.tables``.

Every ``record_*``/``finish_*`` method is its own committed transaction. How a location becomes
an engine (and everything dialect-specific) is ``runner.state.connect``'s.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from sqlalchemy import bindparam, insert, inspect, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from runner import __version__
from runner.errors import DiskFull, LeaseLost, StateError, StateTooNew
from runner.events import EventKind
from runner.state import postgres
from runner.state.connect import dialect_setup, forget, is_disk_full, sqlite_engine, state_url
from runner.state.migrations import migrate
from runner.state.rows import (
    ApiIdentity,
    ArtifactRow,
    IntentOutcome,
    IntentRow,
    PipelineKey,
    Recorded,
    StepKind,
    StepRow,
    StepStatus,
    artifact_row,
    intent_row,
    load_json,
    step_from,
    step_row,
)
from runner.state.tables import SCHEMA_VERSION, artifacts, events, intents, locks, meta, steps


def _now() -> float:
    return time.time()


def _dump(data: dict[str, Any] | None) -> str | None:
    return None if data is None else json.dumps(data, sort_keys=True)


# Statements built once with bind parameters: SQLAlchemy then compiles each one once, and a
# checkpoint costs a cached execute instead of building a new statement (5x cheaper).
_STEP_BY_ID = select(steps).where(steps.c.id == bindparam("b_id"))
_STEP_BY_KEY = select(steps).where(
    steps.c.key == bindparam("b_key"), steps.c.fingerprint == bindparam("b_fp"))
_OTHERS_NOT_CURRENT = (update(steps).where(
    steps.c.key == bindparam("b_key"), steps.c.fingerprint != bindparam("b_fp"),
    steps.c.is_current.is_(True)).values(is_current=False))
_UPDATE_STEP = update(steps).where(steps.c.id == bindparam("b_id"))
_INTENTS_OF = select(intents).where(intents.c.step_id == bindparam("b_id")).order_by(intents.c.id)
_UPDATE_INTENT = update(intents).where(intents.c.id == bindparam("b_id"))
_ARTIFACTS_AT = (select(artifacts).where(artifacts.c.path == bindparam("b_path"))
                 .order_by(artifacts.c.id))
# Fencing: the first statement of every write holds the lease row (a no-op UPDATE locks it in
# PostgreSQL and takes SQLite's write lock), so no takeover can slip between check and write.
_HOLD_LEASE = (update(locks).where(locks.c.id == 1, locks.c.owner == bindparam("b_owner"))
               .values(owner=locks.c.owner))
_RETIRE_ARTIFACT = (update(artifacts).where(artifacts.c.path == bindparam("b_path"))
                    .values(is_current=False))


class Store:
    """The state database of one pipeline. Use as a context manager.

    Every ``record_*``/``finish_*`` method is its own committed transaction, so a
    process killed at any moment leaves a state that the next run can read. Writes
    are serialised in-process (one lock) because SQLite has a single writer anyway.
    """

    def __init__(self, engine: Engine, location: str) -> None:
        self.engine = engine
        self.location = location
        self._write = threading.Lock()
        # Set by the runner's lease (runner.state.lock): every write then checks it still holds it.
        self.lease_token: str | None = None

    @classmethod
    def open(cls, location: str | Path, api: ApiIdentity | None, *, create: bool = True,
             pipeline: PipelineKey | None = None) -> Store:
        """Open (creating if needed) the state at ``location``. ``api`` None: a read-only
        command that sends nothing, so the state's API need not match. An existing file that
        is not a usable state raises ``StateUnusable`` and is never written to. A PostgreSQL
        state holds many pipelines: ``pipeline`` says which."""
        url = state_url(location)
        path = Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None
        is_new = False
        if postgres.is_postgres(url):
            location = postgres.shown(url)
            engine = postgres.pipeline_engine(url, pipeline, location, create=create)
            location = f"{pipeline.name if pipeline else '?'} in {location}"  # one of many
        else:
            engine, is_new = sqlite_engine(url, path, location, create,
                                           prepare=lambda new: cls._prepare(new, location))
        dialect_setup(engine)
        store = cls(engine, str(location))
        try:
            store._check_version()
            migrate(engine, store.location, serialise=postgres.serialise_ddl)
            if api is not None:
                store._check_meta(api)
            if pipeline is not None:
                store._check_pipeline(pipeline, claim=api is not None)
        except SQLAlchemyError as exc:
            engine.dispose()
            forget(path if is_new else None)
            raise StateError(f"cannot use the state at {location}: {exc.__class__.__name__}: "
                             f"{exc.orig if hasattr(exc, 'orig') else exc}") from exc
        except Exception:
            engine.dispose()
            forget(path if is_new else None)
            raise
        return store

    @staticmethod
    def _prepare(engine: Engine, location: str | Path) -> None:
        """Pragmas and tables of a new SQLite state, before it takes its place."""
        dialect_setup(engine)
        migrate(engine, str(location), serialise=postgres.serialise_ddl)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self, *, fenced: bool = True) -> Iterator[Connection]:
        """One committed write transaction, serialised with every other write of this store
        (the lock's queries use it too, unfenced). While a lease is held, the transaction
        first proves it is still this runner's, or raises LeaseLost and writes nothing. A full
        disk is said as such (``DiskFull``)."""
        try:
            with self._write, self.engine.begin() as conn:
                if fenced and self.lease_token is not None:
                    held = conn.execute(_HOLD_LEASE, {"b_owner": self.lease_token})
                    if held.rowcount != 1:
                        raise LeaseLost(self.location, self._holder_now(conn))
                yield conn
        except OperationalError as exc:
            if is_disk_full(exc):
                raise DiskFull(self.location) from exc
            raise

    @staticmethod
    def _holder_now(conn: Connection) -> str:
        row = conn.execute(select(locks).where(locks.c.id == 1)).one_or_none()
        return "nobody holds it now" if row is None else f"now held by pid {row.pid} on {row.host}"

    def read(self) -> Connection:
        """A connection for reads (use as a context manager)."""
        return self.engine.connect()

    # --- meta ---------------------------------------------------------------------------

    def _check_version(self) -> None:
        """Refuse a state of a newer schema before anything (even create_all) writes to it."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("meta"):
                return
            found = dict(conn.execute(select(meta.c.key, meta.c.value)).all())
        version = int(found.get("schema_version", "0"))
        if version > SCHEMA_VERSION:
            raise StateTooNew(self.location, version, found.get("bria_run_version"),
                              SCHEMA_VERSION, __version__)

    def _check_meta(self, api: ApiIdentity) -> None:
        with self.transaction() as conn:
            found = dict(conn.execute(select(meta.c.key, meta.c.value)).all())
            if not found:
                conn.execute(
                    insert(meta),
                    [
                        {"key": "schema_version", "value": str(SCHEMA_VERSION)},
                        {"key": "bria_run_version", "value": __version__},
                        {"key": "api_kind", "value": api.kind},
                        {"key": "api_where", "value": api.where},
                        {"key": "created_at", "value": str(_now())},
                    ],
                )
                return
        theirs = ApiIdentity(found.get("api_kind", "?"), found.get("api_where", "?"))
        if theirs != api:
            raise StateError(
                f"{self.location} belongs to {theirs.describe()}, not {api.describe()}. A state "
                f"never mixes APIs: use another --state for this one."
            )

    def _check_pipeline(self, pipeline: PipelineKey, *, claim: bool) -> None:
        """A state serves one pipeline file: the first run records which, and a state made
        for another file (the same name in another folder) is refused, from any cwd."""
        with self.engine.connect() as conn:
            found = dict(conn.execute(select(meta.c.key, meta.c.value).where(
                meta.c.key.in_(("pipeline_name", "pipeline_file")))).all())
        if not found:
            if claim:  # one transaction: a kill between two would leave half a claim
                self.set_meta("pipeline_name", pipeline.name, pipeline_file=pipeline.file)
            return
        theirs = PipelineKey(found.get("pipeline_name", "?"), found.get("pipeline_file", "?"))
        if theirs != pipeline:
            raise StateError(
                f"{self.location} is the state of {theirs.file} (pipeline {theirs.name}), not "
                f"of {pipeline.file} (pipeline {pipeline.name}): a state serves one pipeline "
                f"file. Give this file its own state (--state state/{pipeline.name}-2.sqlite), "
                f"or, if you moved {theirs.file} there, move its state with it.")

    def meta_value(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar_one_or_none()

    def set_meta(self, key: str, value: str, **more: str) -> None:
        """Set meta values (``key`` and any ``more``) in one transaction."""
        with self.transaction() as conn:
            for name, text in {key: value, **more}.items():
                done = conn.execute(update(meta).where(meta.c.key == name).values(value=text))
                if done.rowcount == 0:
                    conn.execute(insert(meta).values(key=name, value=text))

    # --- reading ------------------------------------------------------------------------

    def load(self, *, with_artifacts: bool = True, current_only: bool = False) -> Recorded:
        """Read the steps (``current_only``: only the rows in use now, not the history of
        earlier inputs), meta values and (unless told not to) artifacts: the planner's input."""
        recorded = Recorded()
        query = select(steps).order_by(steps.c.id)
        if current_only:
            query = query.where(steps.c.is_current.is_(True))
        with self.engine.connect() as conn:
            try:
                for row in conn.execute(query):
                    recorded.steps.setdefault(row.key, []).append(step_row(row))
            except ValueError as exc:  # a kind or status outside the enums: not ours to guess
                raise StateError(f"{self.location} holds a step this bria-run does not know "
                                 f"({exc}); was it written by another version?") from exc
            if with_artifacts:
                recorded.artifacts = [artifact_row(r) for r in conn.execute(select(artifacts))]
            recorded.meta = dict(conn.execute(select(meta.c.key, meta.c.value)).all())
        return recorded

    def current_outputs(self) -> list[Any]:
        """The output files in use now as rows of what ``output_facts`` reads, no more
        (thousands of ArtifactRows cost a resume about 0.1 s)."""
        a = artifacts.c
        with self.engine.connect() as conn:
            return list(conn.execute(select(a.step_id, a.path, a.sha256, a.bytes.label("size"),
                                            a.created_at, a.is_current).where(a.is_current)))

    def add_rows_for(self, recorded: Recorded, pairs: list[tuple[str, str]]) -> None:
        """Add to ``recorded`` the earlier rows with these (key, fingerprint): a file edited
        back to inputs it had before finds its old step again."""
        wanted = set(pairs)
        with self.engine.connect() as conn:
            for key in sorted({key for key, _ in pairs}):
                for row in conn.execute(select(steps).where(steps.c.key == key,
                                                            steps.c.is_current.is_(False))):
                    if (row.key, row.fingerprint) in wanted:
                        recorded.steps.setdefault(row.key, []).insert(0, step_row(row))

    def step(self, step_id: int) -> StepRow:
        with self.engine.connect() as conn:
            return step_row(conn.execute(_STEP_BY_ID, {"b_id": step_id}).one())

    def intents_of(self, step_id: int) -> list[IntentRow]:
        with self.engine.connect() as conn:
            return [intent_row(r) for r in conn.execute(_INTENTS_OF, {"b_id": step_id})]

    def events_since(self, after_id: int = 0) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(events).where(events.c.id > after_id).order_by(events.c.id))
            return [
                {"id": r.id, "ts": r.ts, "kind": r.kind, "step": r.step_key, **load_json(r.data)}
                for r in rows
            ]

    # --- steps --------------------------------------------------------------------------

    def begin_step(self, key: str, kind: StepKind, fingerprint: str, *, is_new: bool = False) -> StepRow:
        """Get or create the row for (key, fingerprint), make it current, count an attempt.
        ``is_new``: the plan saw no row for ``key`` at all, so there is nothing to look up."""
        kind = StepKind(kind)  # a stored kind outside the enum would never be planned again
        now = _now()
        with self.transaction() as conn:
            row = None
            if not is_new:
                row = conn.execute(_STEP_BY_KEY, {"b_key": key, "b_fp": fingerprint}).one_or_none()
                conn.execute(_OTHERS_NOT_CURRENT, {"b_key": key, "b_fp": fingerprint})
            if row is None:
                values = {"key": key, "kind": kind, "fingerprint": fingerprint,
                          "status": StepStatus.RUNNING, "is_current": True, "attempts": 1,
                          "created_at": now, "started_at": now}
                step_id = conn.execute(insert(steps), values).inserted_primary_key[0]  # type: ignore[index]
                return step_from(step_id, values)
            values = {"is_current": True}
            if row.status != StepStatus.DONE:
                values.update(status=StepStatus.RUNNING, attempts=row.attempts + 1, error=None,
                              started_at=row.started_at or now)
            conn.execute(_UPDATE_STEP, {"b_id": row.id, **values})
            return step_row(conn.execute(_STEP_BY_ID, {"b_id": row.id}).one())

    def finish_step(
        self, step_id: int, *, remote_id: str | None = None, outputs: dict[str, Any] | None = None,
        artifact: dict[str, Any] | None = None, event: dict[str, Any] | None = None,
    ) -> None:
        """Record a step as done, with its output file and its event, in one transaction."""
        now = _now()
        values: dict[str, Any] = {"status": StepStatus.DONE, "finished_at": now, "error": None}
        if remote_id is not None:
            values["remote_id"] = remote_id
        if outputs is not None:
            values["outputs"] = _dump(outputs)
        with self.transaction() as conn:
            conn.execute(_UPDATE_STEP, {"b_id": step_id, **values})
            if artifact is not None:
                conn.execute(_RETIRE_ARTIFACT, {"b_path": artifact["path"]})
                conn.execute(insert(artifacts), {**artifact, "step_id": step_id,
                                                 "is_current": True, "created_at": now})
            if event is not None:
                conn.execute(insert(events), {"ts": now, "kind": event.pop("kind"),
                                              "step_key": event.pop("key", None),
                                              "data": _dump(event)})

    def update_step(self, step_id: int, **values: Any) -> None:
        """Record progress inside a step (remote id, partial outputs) without finishing it."""
        if "outputs" in values:
            values["outputs"] = _dump(values["outputs"])
        with self.transaction() as conn:
            conn.execute(_UPDATE_STEP, {"b_id": step_id, **values})

    def fail_step(self, step_id: int, error: str) -> None:
        with self.transaction() as conn:
            conn.execute(_UPDATE_STEP, {"b_id": step_id, "status": StepStatus.FAILED, "error": error,
                                        "finished_at": _now()})

    # --- intents ------------------------------------------------------------------------

    def record_intent(self, step_id: int, op: str) -> int:
        with self.transaction() as conn:
            result = conn.execute(insert(intents),
                                  {"step_id": step_id, "op": op, "created_at": _now()})
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def resolve_intent(
        self,
        intent_id: int,
        outcome: IntentOutcome,
        *,
        remote_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        values: dict[str, Any] = {"outcome": IntentOutcome(outcome), "resolved_at": _now()}
        if remote_id is not None:
            values["remote_id"] = remote_id
        if data is not None:
            values["data"] = _dump(data)
        with self.transaction() as conn:
            conn.execute(_UPDATE_INTENT, {"b_id": intent_id, **values})

    def paid_intents(self, ops: tuple[str, ...]) -> list[IntentRow]:
        """The intents of ``ops`` that made something Bria charges for (landed, found again,
        or landed and later superseded): what `status` counts as credits spent, once each."""
        paid = (IntentOutcome.LANDED, IntentOutcome.RECONCILED, IntentOutcome.SUPERSEDED)
        query = (select(intents).where(intents.c.op.in_(ops), intents.c.outcome.in_(paid))
                 .order_by(intents.c.id))
        with self.engine.connect() as conn:
            return [intent_row(r) for r in conn.execute(query)]

    # --- artifacts, events, file hashes --------------------------------------------------

    def artifacts_at(self, path: str) -> list[ArtifactRow]:
        with self.engine.connect() as conn:
            return [artifact_row(r) for r in conn.execute(_ARTIFACTS_AT, {"b_path": path})]

    def move_artifact(self, old_path: str, new_path: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                update(artifacts)
                .where(artifacts.c.path == old_path)
                .values(path=new_path, is_current=False)
            )

    def log(self, event: EventKind, step_key: str | None = None, **data: Any) -> None:
        with self.transaction() as conn:
            conn.execute(insert(events), {"ts": _now(), "kind": event, "step_key": step_key,
                                          "data": _dump(data)})
