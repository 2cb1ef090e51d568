"""The studio view (`bria-run status --all`): every pipeline a PostgreSQL state holds, read
from the registry and each pipeline's own schema: who holds it and how long its lease has
left, its phase, the model's training status, scenes done of total, credits spent and the
last error. Reads only; needs no pipeline file (another machine's pipelines are listed too).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from runner.errors import StateError
from runner.state import postgres
from runner.state.rows import StepKind, StepStatus
from runner.state.tables import artifacts, locks, meta, pipelines, steps


def studio_view(url: str) -> list[dict[str, Any]]:
    """One entry per pipeline, by name."""
    location = postgres.shown(url)
    engine = postgres.connect(url, location, pooled=False)
    try:
        with engine.connect() as conn:
            if not conn.execute(text("SELECT to_regclass('bria_run.pipelines')")).scalar():
                return []
            registry = conn.execute(select(pipelines).order_by(pipelines.c.name,
                                                               pipelines.c.file)).all()
            return [_entry(conn, row) for row in registry]
    except SQLAlchemyError as exc:
        raise StateError(f"cannot read the studio at {location}: "
                         f"{postgres.described(exc)}") from exc
    finally:
        engine.dispose()


def _entry(conn: Connection, row: Any) -> dict[str, Any]:
    conn.execute(text(f"SET search_path TO {row.schema_name}"))  # a plain identifier, ours
    try:
        notes = dict(conn.execute(select(meta.c.key, meta.c.value)).all())
        current = conn.execute(select(steps.c.kind, steps.c.status, steps.c.remote_id,
                                      steps.c.outputs).where(steps.c.is_current.is_(True))).all()
        return {"pipeline": row.name, "file": row.file, "lease": _lease(conn),
                "phase": notes.get("run_phase", "new"), "training": _training(current),
                "scenes_done": sum(1 for s in current
                                   if s.kind == StepKind.SCENE and s.status == StepStatus.DONE),
                "scenes_total": int(notes.get("run_scenes_total", 0)),
                "credits_spent": _credits(conn, notes), "last_error": _last_error(conn)}
    finally:
        conn.execute(text("SET search_path TO DEFAULT"))


def _lease(conn: Connection) -> dict[str, Any] | None:
    now = conn.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one()
    lock = conn.execute(select(locks)).first()
    if lock is None:
        return None
    lapses = lock.expires_at if lock.expires_at is not None else lock.heartbeat_at + 60.0
    return {"host": lock.host, "pid": lock.pid, "command": lock.command,
            "left": round(float(lapses) - float(now), 1)}


def _training(current: Sequence[Any]) -> str | None:
    train = next((s for s in current if s.kind == StepKind.TRAIN), None)
    if train is None:
        return None
    status = json.loads(train.outputs).get("status") if train.outputs else None
    return f"model {train.remote_id}: {status or train.status}"


def _credits(conn: Connection, notes: dict[str, str]) -> float:
    training, image = (float(p) for p in notes.get("run_prices", "80 3").split())
    trained = conn.execute(select(func.count()).where(steps.c.kind == StepKind.TRAIN,
                                                      steps.c.remote_id.is_not(None))).scalar_one()
    images = conn.execute(select(func.count(func.distinct(artifacts.c.step_id)))).scalar_one()
    return float(trained) * training + float(images) * image


def _last_error(conn: Connection) -> str | None:
    return conn.execute(select(steps.c.error).where(steps.c.error.is_not(None))
                        .order_by(steps.c.finished_at.desc().nulls_last()).limit(1)).scalar()
