"""The state's tables, declared once (SQLAlchemy Core).

A step is one unit of work with a stable key (``project``, ``upload/<image>``,
``scene/<name>/<n>``) and a fingerprint of its inputs. Rows are never rewritten to
mean something else: a changed input gives a new row under the same key, and
``is_current`` says which row the pipeline uses now. Before every POST an intent row
is committed; the remote id is committed right after the answer.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from runner.state.rows import StepStatus

SCHEMA_VERSION = 1

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

steps = Table(
    "steps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(200), nullable=False),
    Column("kind", String(32), nullable=False),  # a StepKind
    Column("fingerprint", String(64), nullable=False),
    Column("status", String(16), nullable=False, default=StepStatus.PENDING),  # a StepStatus
    Column("is_current", Boolean, nullable=False, default=True),
    Column("remote_id", String(128)),
    Column("outputs", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    UniqueConstraint("key", "fingerprint", name="uq_step_key_fingerprint"),
)

intents = Table(
    "intents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("step_id", Integer, ForeignKey("steps.id"), nullable=False, index=True),
    Column("op", String(48), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("remote_id", String(128)),
    Column("data", Text),
    Column("outcome", String(16)),  # None: unknown; else an IntentOutcome
    Column("resolved_at", Float),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("step_id", Integer, ForeignKey("steps.id"), nullable=False, index=True),
    Column("scene", String(64), nullable=False),
    Column("variation", Integer, nullable=False),
    Column("path", Text, nullable=False, index=True),
    Column("sha256", String(64), nullable=False),
    Column("seed", Integer),
    Column("source", Text),
    Column("bytes", Integer),
    Column("is_current", Boolean, nullable=False, default=True),
    Column("created_at", Float, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ts", Float, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("step_key", String(200)),
    Column("data", Text),
)

locks = Table(
    "locks",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1: one runner per state
    Column("owner", String(64), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("host", String(255), nullable=False),
    Column("command", Text, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
)
