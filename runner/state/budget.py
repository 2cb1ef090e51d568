"""One request budget per organisation, in the studio's PostgreSQL database: every runner on
every machine that uses the database draws its slots from the same table.

The rule is the in-memory limiter's (``runner.bria.limiter``), with the slot log in
``bria_run.budget_slots``: a slot is taken when a request is sent and, once answered, expires
``window`` seconds after its answer, so the server never sees more than ``rpm`` arrivals in a
window, whoever sent them. A slot still in flight expires on its own after ``IN_FLIGHT_BOUND``
(no request outlives its timeout), so a runner killed mid-request cannot leak the budget. A
429's Retry-After is a row in ``budget_blocks`` that holds the endpoint for every runner.
Times are the database's clock; each take is one transaction under an advisory lock per
(budget, endpoint), so two runners can never both take the last slot.

The budget is keyed by the API root and a hash of the token, never the token. It satisfies
``runner.bria.limiter.Budget`` without importing it (the state does not depend on the HTTP
side); ``runner.app`` hands it to the client.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable

from sqlalchemy import Engine, Float, cast, delete, extract, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from runner.state.tables import budget_blocks, budget_slots

IN_FLIGHT_BOUND = 120.0  # seconds; the client's timeouts end every request well before
_POLL = 0.1  # an endpoint full of requests in flight: look again this often
_MAX_SLEEP = 1.0  # re-read at least this often (a 429 elsewhere may have blocked it)
_SWEEP_EVERY = 200  # releases between sweeps of the whole budget's expired rows

OnWait = Callable[[str, float], None]
# One round trip: serialise the takers of one endpoint, and read the database's clock.
_LOCK_AND_NOW = text("SELECT extract(epoch FROM clock_timestamp()) "
                     "FROM pg_advisory_xact_lock(hashtext(:k))")
_NOW = cast(extract("epoch", func.clock_timestamp()), Float)


def budget_key(api_root: str, token_hash: str) -> str:
    return f"{api_root}#{token_hash}"


class SharedBudget:
    """Per-endpoint slots in the database, ``rpm`` per ``window`` seconds for everyone."""

    def __init__(self, engine: Engine, budget: str, rpm: int | None, window: float = 60.0,
                 *, on_wait: OnWait | None = None) -> None:
        self.engine, self.budget, self.rpm, self.window = engine, budget, rpm, window
        self._on_wait = on_wait
        self._lock = threading.Lock()
        self._mine: dict[str, list[int]] = defaultdict(list)  # my slots in flight, per endpoint
        self._stats: dict[str, dict[str, float]] = {}
        self._released = 0

    def acquire(self, key: str, on_wait: OnWait | None = None) -> float:
        """Take a slot for endpoint ``key``, waiting as needed; returns the seconds waited."""
        notify = on_wait or self._on_wait
        began = time.monotonic()
        while (wait := self._take(key)) != 0.0:
            if wait is not None and notify is not None and wait >= 0.05:
                notify(key, wait)
            time.sleep(_POLL if wait is None else min(wait, _MAX_SLEEP))
        waited = time.monotonic() - began
        self._count(key, "waited", waited)
        return waited

    def release(self, key: str) -> None:
        with self._lock:
            slot = self._mine[key].pop() if self._mine[key] else None
        if slot is None:
            return
        with self.engine.begin() as conn:
            conn.execute(update(budget_slots).where(budget_slots.c.id == slot).values(
                answered=True, expires_at=_NOW + (self.window if self.rpm else 0.0)))
            self._released += 1
            if self._released % _SWEEP_EVERY == 0:
                self._sweep(conn)

    def _sweep(self, conn: Connection) -> None:
        """Expired slots and blocks of endpoints nobody calls any more: a take clears only
        its own endpoint's."""
        conn.execute(delete(budget_slots).where(budget_slots.c.budget == self.budget,
                                                budget_slots.c.expires_at <= _NOW))
        conn.execute(delete(budget_blocks).where(budget_blocks.c.budget == self.budget,
                                                 budget_blocks.c.until <= _NOW))

    def block(self, key: str, seconds: float) -> None:
        """Hold ``key`` for every runner for ``seconds`` (after a 429)."""
        with self.engine.begin() as conn:
            until = _now(conn) + seconds
            upsert = pg_insert(budget_blocks).values(budget=self.budget, endpoint=key, until=until)
            conn.execute(upsert.on_conflict_do_update(
                index_elements=["budget", "endpoint"],
                set_={"until": func.greatest(budget_blocks.c.until, upsert.excluded.until)}))
        self._count(key, "blocks", 1)

    def usage(self, key: str) -> float:
        """The fraction of ``key``'s budget in use right now, by every runner."""
        if not self.rpm:
            return 0.0
        with self.engine.connect() as conn:
            used = conn.execute(select(func.count()).where(*self._of(key),
                                budget_slots.c.expires_at > _now(conn))).scalar_one()
        return float(used) / self.rpm

    def stats(self) -> dict[str, dict[str, float]]:
        """Per endpoint, this process's share: seconds waited, 429 blocks, in flight."""
        with self._lock:
            return {key: {**row, "in_flight": len(self._mine[key])}
                    for key, row in self._stats.items()}

    def _take(self, key: str) -> float | None:
        """One transaction: 0.0 when a slot was taken; else seconds until one frees, or None
        when only an answer can free one."""
        with self.engine.begin() as conn:
            now = float(conn.execute(_LOCK_AND_NOW, {"k": f"{self.budget} {key}"}).scalar_one())
            conn.execute(delete(budget_slots).where(*self._of(key),
                                                    budget_slots.c.expires_at <= now))
            blocked = conn.execute(select(budget_blocks.c.until).where(
                budget_blocks.c.budget == self.budget, budget_blocks.c.endpoint == key)).scalar()
            if blocked is not None and blocked > now:
                return float(blocked - now)
            wait = self._wait_for_slot(conn, key, now) if self.rpm else 0.0
            if wait != 0.0:
                return wait
            slot = conn.execute(insert(budget_slots).values(
                budget=self.budget, endpoint=key, answered=False,
                expires_at=now + IN_FLIGHT_BOUND + self.window).returning(budget_slots.c.id))
            slot_id = int(slot.scalar_one())
        with self._lock:
            self._mine[key].append(slot_id)
        return 0.0

    def _wait_for_slot(self, conn: Connection, key: str, now: float) -> float | None:
        assert self.rpm is not None
        rows = conn.execute(select(budget_slots.c.answered, budget_slots.c.expires_at)
                            .where(*self._of(key))).all()
        if len(rows) < self.rpm:
            return 0.0
        answered = sorted(float(r.expires_at) for r in rows if r.answered)
        in_flight = len(rows) - len(answered)
        if in_flight >= self.rpm:
            return None
        return max(0.001, answered[len(rows) - self.rpm] - now)

    def _of(self, key: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
        return (budget_slots.c.budget == self.budget, budget_slots.c.endpoint == key)

    def _count(self, key: str, name: str, amount: float) -> None:
        with self._lock:
            row = self._stats.setdefault(key, {"waited": 0.0, "blocks": 0})
            row[name] += amount


def _now(conn: Connection) -> float:
    return float(conn.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one())
