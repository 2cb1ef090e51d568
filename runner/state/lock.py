"""One runner per state: a lock row with pid, host, command, start and heartbeat.

The row's primary key is fixed, so two runners racing to take it cannot both succeed.
A holder counts as alive while its heartbeat is fresh and, on this host, its pid exists;
a dead holder's lock is broken (and the event logged) and the run proceeds.
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
from runner.state.store import Store
from runner.state.tables import locks

HEARTBEAT_EVERY = 10.0
STALE_AFTER = 60.0  # a live runner heartbeats every 10 s; 60 s of silence means it is gone


@dataclass(frozen=True)
class Holder:
    owner: str
    pid: int
    host: str
    command: str
    started_at: float
    heartbeat_at: float

    def since(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started_at))


def current_holder(store: Store) -> Holder | None:
    with store.read() as conn:
        row = conn.execute(select(locks).where(locks.c.id == 1)).one_or_none()
    if row is None:
        return None
    return Holder(row.owner, row.pid, row.host, row.command, row.started_at, row.heartbeat_at)


def is_alive(holder: Holder, now: float, host: str | None = None) -> bool:
    if now - holder.heartbeat_at > STALE_AFTER:
        return False
    if holder.host != (host or socket.gethostname()):
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
    if holder is None or not is_alive(holder, time.time()):
        return None
    return {"pid": holder.pid, "host": holder.host, "command": holder.command,
            "since": holder.since()}


def break_lock(store: Store, holder: Holder, why: str) -> None:
    with store.transaction() as conn:
        conn.execute(delete(locks).where(locks.c.id == 1, locks.c.owner == holder.owner))
    store.log(EventKind.LOCK_BROKEN, None, pid=holder.pid, host=holder.host, why=why,
              command=holder.command)


class RunLock:
    """Context manager: take the state's lock, heartbeat while held, release on exit."""

    def __init__(
        self, store: Store, command: str, *, clock: Callable[[], float] = time.time,
        on_break: Callable[[Holder], None] | None = None,
    ) -> None:
        self.store, self.command, self.clock = store, command, clock
        self.on_break = on_break  # tells the user whose lock was broken
        self.owner = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        holder = current_holder(self.store)
        if holder is not None:
            if is_alive(holder, self.clock()):
                raise self._held(holder)
            break_lock(self.store, holder, "holder is gone")
            if self.on_break is not None:
                self.on_break(holder)
        now = self.clock()
        try:
            with self.store.transaction() as conn:
                conn.execute(insert(locks).values(
                    id=1, owner=self.owner, pid=os.getpid(), host=socket.gethostname(),
                    command=self.command, started_at=now, heartbeat_at=now,
                ))
        except IntegrityError:
            raced = current_holder(self.store)
            if raced is None:
                raise
            raise self._held(raced) from None
        self._thread = threading.Thread(target=self._beat, name="bria-run-lock", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        with self.store.transaction() as conn:
            conn.execute(delete(locks).where(locks.c.id == 1, locks.c.owner == self.owner))

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_EVERY):
            with self.store.transaction() as conn:
                conn.execute(update(locks).where(locks.c.owner == self.owner)
                             .values(heartbeat_at=self.clock()))

    def _held(self, holder: Holder) -> LockHeld:
        return LockHeld(holder.pid, holder.host, holder.command, holder.since(),
                        self.store.location)
