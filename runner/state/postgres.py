"""PostgreSQL as a studio's state: one database holds every pipeline, each in a schema of
its own (the same tables as a SQLite state, so the store's SQL is the same), and the schema
``bria_run`` holds what they share: the registry of pipelines and the request budget.

Users write ``postgresql://``; SQLAlchemy's psycopg 3 dialect is ``postgresql+psycopg://``.
The driver is an optional extra; without it the error says how to install it. A URL shown to
a user never carries its password.
"""

from __future__ import annotations

import hashlib
import re
import time

from sqlalchemy import Engine, create_engine, func, insert, inspect, select, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from runner.errors import StateError, StateMissing
from runner.state.rows import PipelineKey
from runner.state.tables import STUDIO_SCHEMA, pipelines, studio, studio_migrations

DRIVER_HINT = "pip install 'bria-run[postgres]'"
STUDIO_VERSION = 1
_STUDIO_LOCK = 0x62726961  # advisory lock id ("bria"): one creator of the shared schema at once
_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


def is_postgres(url: str) -> bool:
    return url.split("://", 1)[0] in _SCHEMES


def engine_url(url: str) -> str:
    """The URL SQLAlchemy needs: ``postgresql://`` means the psycopg 3 driver here."""
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg://{rest}" if scheme in ("postgresql", "postgres") else url


def shown(url: str) -> str:
    """The URL as users may see it: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1]


def require_driver(location: str) -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise StateError(f"cannot open the state at {location}: a PostgreSQL state needs the "
                         f"psycopg driver: {DRIVER_HINT}") from exc


def schema_for(key: PipelineKey) -> str:
    """A schema name that is a plain identifier (no quoting anywhere) and unique per key."""
    slug = re.sub(r"[^a-z0-9]+", "_", key.name.lower()).strip("_")[:40] or "pipeline"
    digest = hashlib.sha256(f"{key.name}\0{key.file}".encode()).hexdigest()[:12]
    return f"p_{slug}_{digest}"


def connect(url: str, location: str, *, schema: str | None = None, pooled: bool = True,
            durable: bool = True) -> Engine:
    """An engine on the database; with ``schema``, every unqualified table is that schema's
    (set at connect time, so no pooled connection can ever point elsewhere). ``durable``
    False: commits do not wait for the disk (for the budget's slots, which live seconds)."""
    require_driver(location)
    settings = ([f"-csearch_path={schema}"] if schema else []) + (
        [] if durable else ["-csynchronous_commit=off"])
    args = {"options": " ".join(settings)} if settings else {}
    try:
        # No pre-ping: it costs a round trip per transaction; a server restart fails the
        # run with a clear error, and running again resumes.
        return create_engine(engine_url(url), connect_args=args,
                             **({} if pooled else {"poolclass": NullPool}))
    except (ArgumentError, ImportError) as exc:
        raise StateError(f"cannot open the state at {location}: {exc}") from exc


def pipeline_engine(url: str, key: PipelineKey | None, location: str, *, create: bool) -> Engine:
    """The engine of ``key``'s schema, registering the pipeline (and creating the shared
    schema) first when ``create``; StateMissing when it never ran and ``create`` is False."""
    if key is None:
        raise StateError(f"cannot open the state at {location}: a PostgreSQL state holds many "
                         f"pipelines, and none was named")
    admin = connect(url, location, pooled=False)
    try:
        with admin.begin() as conn:
            ensure_studio(conn, location)
            schema = _register(conn, key, create)
    except SQLAlchemyError as exc:
        raise StateError(f"cannot use the state at {location}: {described(exc)}") from exc
    finally:
        admin.dispose()
    if schema is None:
        raise StateMissing(f"no state for {key.name} ({key.file}) in {location}: nothing has "
                           f"run for this pipeline yet")
    return connect(url, location, schema=schema)


def described(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    return f"{exc.__class__.__name__}: {str(orig or exc).strip()}"


def ensure_studio(conn: Connection, location: str) -> None:
    """Create the shared schema at its latest version, or refuse a newer one."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _STUDIO_LOCK})
    conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {STUDIO_SCHEMA}"))
    if not inspect(conn).has_table("migrations", schema=STUDIO_SCHEMA):
        studio.create_all(conn)
        conn.execute(insert(studio_migrations).values(
            version=STUDIO_VERSION, name="registry and budget", applied_at=time.time()))
        return
    found = conn.execute(select(func.max(studio_migrations.c.version))).scalar_one() or 0
    if found > STUDIO_VERSION:
        raise StateError(f"{location} was set up by a newer bria-run (studio schema {found}, "
                         f"this one knows up to {STUDIO_VERSION}). Upgrade bria-run to use it.")


def _register(conn: Connection, key: PipelineKey, create: bool) -> str | None:
    found = conn.execute(select(pipelines.c.schema_name).where(
        pipelines.c.name == key.name, pipelines.c.file == key.file)).scalar()
    if found is not None or not create:
        return found
    schema = schema_for(key)
    conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    conn.execute(insert(pipelines).values(schema_name=schema, name=key.name, file=key.file,
                                          created_at=time.time()))
    return schema


def serialise_ddl(conn: Connection) -> None:
    """Two runners opening one new pipeline at once: the second waits for the first's tables."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(current_schema()))"))


def studio_engine(url: str) -> Engine:
    """A pooled engine for the shared schema (the budget), which it creates if needed. Its
    commits do not wait for the disk: a slot lives for a window, and a database crash that
    loses the last ones costs at most a few 429s, while an fsync per request would cost more
    than the request's own bookkeeping (see the P1 benchmark)."""
    location = shown(url)
    engine = connect(url, location, durable=False)
    try:
        with engine.begin() as conn:
            ensure_studio(conn, location)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StateError(f"cannot use the state at {location}: {described(exc)}") from exc
    return engine
