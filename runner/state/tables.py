"""The state's tables, declared once (SQLAlchemy Core).

A step is one unit of work with a stable key (``project``, ``upload/<image>``,
``scene/<name>/<n>``) and a fingerprint of its inputs. Rows are never rewritten to
mean something else: a changed input gives a new row under the same key, and
``is_current`` says which row the pipeline uses now. Before every POST an intent row
is committed; the remote id is committed right after the answer.

``migrations`` records which schema versions a state has (``runner.state.migrations``);
``studio`` holds the tables a PostgreSQL database shares between all its pipelines: the
registry of pipelines and the organisation's request budget.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from runner.state.rows import StepStatus

SCHEMA_VERSION = 2  # 2: the lock row is a lease (expires_at on the database clock)

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
    Column("expires_at", Float),  # database clock; None only in rows a version-1 runner wrote
)

migrations = Table(
    "migrations",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("applied_at", Float, nullable=False),
)

# --- PostgreSQL only: what every pipeline of one database shares ---------------------------

STUDIO_SCHEMA = "bria_run"
studio = MetaData(schema=STUDIO_SCHEMA)

pipelines = Table(
    "pipelines",
    studio,
    Column("schema_name", String(63), primary_key=True),  # the pipeline's own schema
    Column("name", String(200), nullable=False),
    Column("file", Text, nullable=False),  # the file's path inside its project
    Column("created_at", Float, nullable=False),
    UniqueConstraint("name", "file", name="uq_pipeline_identity"),
)

budget_slots = Table(
    "budget_slots",
    studio,
    Column("id", Integer, primary_key=True),
    Column("budget", String(300), nullable=False),  # the API root and a hash of the token
    Column("endpoint", String(200), nullable=False),
    Column("answered", Boolean, nullable=False),
    # In flight: an upper bound (a request cannot outlive its timeout), so a killed runner's
    # slots free themselves; answered: the end of the window after the answer.
    Column("expires_at", Float, nullable=False),
    Index("ix_budget_slots_key", "budget", "endpoint", "expires_at"),
)

budget_blocks = Table(
    "budget_blocks",
    studio,
    Column("budget", String(300), primary_key=True),
    Column("endpoint", String(200), primary_key=True),
    Column("until", Float, nullable=False),  # after a 429: nobody sends before this
)

studio_migrations = Table(
    "migrations",
    studio,
    Column("version", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("applied_at", Float, nullable=False),
)
