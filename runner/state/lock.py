"""One runner per pipeline, across machines: the lock row is a lease on the database clock.

The row (fixed primary key, so two runners cannot both insert it) names its holder (a random
token), host, pid and command, with a heartbeat and an expiry that the holder renews. A
holder counts as alive until its lease expires, except that on its own host a holder whose
pid is gone is dead at once. A dead holder's lease is taken over (compare-and-set on its
token, the event logged) and the run continues where it stopped. Fencing: while a runner
holds the lease, every write of its store first checks the token (``Store.transaction``), so
a runner whose lease was taken over cannot write again; a heartbeat that finds the lease gone
tells the runner to stop.

``BRIA_RUN_HOST`` overrides the host name (tests play two machines on one) and
``BRIA_RUN_LEASE`` the lease's length in seconds.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from runner.errors import LockHeld
from runner.events import EventKind
from runner.state.connect import db_clock
from runner.state.store import Store
from runner.state.tables import locks

HOST_ENV, LEASE_ENV = "BRIA_RUN_HOST", "BRIA_RUN_LEASE"
STALE_AFTER = 60.0  # the default lease: a live runner renews it every sixth of it
HEARTBEAT_EVERY = STALE_AFTER / 6


def this_host() -> str:
    return os.environ.get(HOST_ENV) or socket.gethostname()


def lease_seconds() -> float:
    try:
        return max(0.5, float(os.environ.get(LEASE_ENV, STALE_AFTER)))
    except ValueError:
        return STALE_AFTER


@dataclass(frozen=True)
class Holder:
    owner: str
    pid: int
    host: str
    command: str
    started_at: float
    heartbeat_at: float
    expires_at: float | None = None  # None: a version-1 row, judged by its heartbeat

    def since(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started_at))

    def lapses_at(self) -> float:
        return self.expires_at if self.expires_at is not None else self.heartbeat_at + STALE_AFTER


def _holder(row: object) -> Holder:
    return Holder(row.owner, row.pid, row.host, row.command,  # type: ignore[attr-defined]
                  row.started_at, row.heartbeat_at, row.expires_at)  # type: ignore[attr-defined]


def current_holder(store: Store) -> Holder | None:
    with store.read() as conn:
        row = conn.execute(select(locks).where(locks.c.id == 1)).one_or_none()
    return None if row is None else _holder(row)


def database_now(store: Store) -> float:
    with store.read() as conn:
        return float(conn.execute(select(db_clock(store.engine))).scalar_one())


def is_alive(holder: Holder, now: float, host: str | None = None) -> bool:
    """Alive until its lease lapses (``now`` on the database clock); on its own host, only
    while its pid exists."""
    if now > holder.lapses_at():
        return False
    if holder.host != (host or this_host()):
        return True
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_holder(store: Store) -> dict[str, object] | None:
    """The runner holding the state now, if it is alive, as data for `status`."""
    holder = current_holder(store)
    if holder is None:
        return None
    now = database_now(store)
    if not is_alive(holder, now):
        return None
    return {"pid": holder.pid, "host": holder.host, "command": holder.command,
            "since": holder.since(), "lease_left": round(holder.lapses_at() - now, 1)}


def break_lock(store: Store, holder: Holder, why: str) -> None:
    with store.transaction(fenced=False) as conn:
        conn.execute(delete(locks).where(locks.c.id == 1, locks.c.owner == holder.owner))
    store.log(EventKind.LOCK_BROKEN, None, pid=holder.pid, host=holder.host, why=why,
              command=holder.command)


class RunLock:
    """Context manager: take the pipeline's lease (waiting up to ``wait`` seconds for a live
    one to end or lapse), renew it while held, release it on exit."""

    def __init__(
        self, store: Store, command: str, *, on_break: Callable[[Holder], None] | None = None,
        on_lost: Callable[[], None] | None = None, wait: float = 0.0,
        lease: float | None = None, host: str | None = None,
    ) -> None:
        self.store, self.command, self.wait = store, command, wait
        self.on_break = on_break  # tells the user whose lease was taken over
        self.on_lost = on_lost  # tells the runner to stop: its lease was taken over
        self.lease = lease or lease_seconds()
        self.host = host or this_host()
        self.owner = uuid.uuid4().hex
        self.lost = threading.Event()  # a renewal found the lease taken over
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait
        while (holder := self._try_take()) is not None:
            now = database_now(self.store)
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._held(holder, holder.lapses_at() - now)
            time.sleep(min(left, 1.0, max(0.05, holder.lapses_at() - now)))
        self._thread = threading.Thread(target=self._beat, name="bria-run-lease", daemon=True)
        self._thread.start()

    def _try_take(self) -> Holder | None:
        """Take the lease if it is free or its holder is dead: None, else the live holder."""
        holder = current_holder(self.store)
        if holder is not None and is_alive(holder, database_now(self.store), self.host):
            return holder
        now = db_clock(self.store.engine)
        values = {"owner": self.owner, "pid": os.getpid(), "host": self.host,
                  "command": self.command, "started_at": now, "heartbeat_at": now,
                  "expires_at": now + self.lease}
        try:
            with self.store.transaction(fenced=False) as conn:
                if holder is None:
                    conn.execute(insert(locks).values(id=1, **values))
                elif conn.execute(update(locks).where(locks.c.id == 1,
                                                      locks.c.owner == holder.owner)
                                  .values(**values)).rowcount != 1:
                    return current_holder(self.store) or self._try_take()
        except IntegrityError:  # another runner inserted it first
            return current_holder(self.store) or self._try_take()
        self.store.lease_token = self.owner
        if holder is not None:
            self.store.log(EventKind.LOCK_BROKEN, None, pid=holder.pid, host=holder.host,
                           why="its lease lapsed" if holder.host != self.host else "holder is gone",
                           command=holder.command)
            if self.on_break is not None:
                self.on_break(holder)
        return None

    def release(self) -> None:
        self._stop.set()
        self.store.lease_token = None
        with self.store.transaction(fenced=False) as conn:
            conn.execute(delete(locks).where(locks.c.id == 1, locks.c.owner == self.owner))

    def _beat(self) -> None:
        while not self._stop.wait(self.lease / 6):
            now = db_clock(self.store.engine)
            try:
                with self.store.transaction(fenced=False) as conn:
                    renewed = conn.execute(update(locks).where(locks.c.owner == self.owner)
                                           .values(heartbeat_at=now, expires_at=now + self.lease))
            except Exception:  # noqa: BLE001, S112 - a database hiccup: the next beat tries again
                continue
            if renewed.rowcount != 1 and not self._stop.is_set():
                self.lost.set()
                if self.on_lost is not None:
                    self.on_lost()
                return

    def _held(self, holder: Holder, expires_in: float) -> LockHeld:
        silent = holder.host != self.host
        return LockHeld(holder.pid, holder.host, holder.command, holder.since(),
                        self.store.location, expires_in if silent else None)
