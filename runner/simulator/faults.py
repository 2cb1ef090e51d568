"""The simulator's injected faults: which request meets which, drawn the same way every time.

Each request's faults come from its own generator, seeded by the setting ``seed``, the request
itself (method, path, body) and how many times that same request arrived before. A fixed seed
so gives every request the same fate whatever order concurrent clients send them in: the n-th
send of one generation meets the same fault in every run with the same settings.

What each fault is, and where it falls against the work (the world operation):

- ``storm``: 429 with ``Retry-After``, before the work.
- ``fail``: a 5xx answer. Bria's own 500 (its application failed) and 503 (Bria, or its load
  balancer, turning requests away) come before the work: nothing is made. A gateway's statuses
  follow what a CDN in front of Bria most likely does: a 502 when it could not reach or read
  the origin, most often before any work, so the simulator answers it before the work; a 504
  when it stopped waiting for an origin that goes on working (Bria's CDN cuts answers at
  60 s), so the simulator does the work, then answers 504. A client cannot tell a 502 that
  came before the work from one that came after, so bria-run counts both as lost answers.
- ``lost``: POSTs only. The work is done, then the connection closes without an answer.
- ``drop``: the connection drops: ``drop_before`` of the time as the request arrives (read,
  nothing done), otherwise midway through the answer (done). On the wire the two look the
  same to a client: a connection that closed after its request was sent.
- ``refuse``: after this request, its connection closes and Bria refuses new connections for
  ``refuse_seconds`` (its socket stops listening, as a Bria that is briefly down): a request
  that meets the refusal never left its client, which can tell (connection refused).
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import dataclass

from runner.simulator.config import SimConfig

FAIL_STATUSES = (500, 502, 503, 504)
AFTER_THE_WORK = frozenset({504})  # the statuses answered once the work is done
KINDS = ("storm", "fail", "lost", "drop", "refuse")


@dataclass(frozen=True)
class Fate:
    """What happens to one request. ``storm`` and ``fail`` exclude the others; ``drop`` is
    "before" or "after" the work; ``refuse`` may come with any of them."""

    storm: bool = False
    fail: int | None = None  # the 5xx status answered
    lost: bool = False
    drop: str | None = None
    refuse: bool = False

    @property
    def fails_after_the_work(self) -> bool:
        return self.fail in AFTER_THE_WORK

    def kinds(self) -> list[str]:
        """The faults this fate applies, as counted in the stats (``fail`` by its status)."""
        found = ["storm"] if self.storm else []
        if self.fail is not None:
            found.append(str(self.fail))
        if self.lost:
            found.append("lost")
        elif self.drop is not None:
            found.append(f"drop_{self.drop}")
        if self.refuse:
            found.append("refuse")
        return found


class Faults:
    """Draws each request's fate and counts the faults applied, in all and per route."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._seen: Counter[str] = Counter()  # request digest -> times it arrived
        self.applied: Counter[tuple[str, str]] = Counter()  # (route, kind) -> times

    def reseed(self) -> None:
        """A new seed: every request's count starts again."""
        with self._lock:
            self._seen.clear()

    def draw(self, method: str, path: str, body: bytes, route: str, *,
             is_link: bool = False) -> Fate:
        """The fate of this arrival of the request, counted under ``route``; a result link
        (the CDN, ``is_link``) meets dropped connections only."""
        digest = hashlib.sha256(f"{method} {path}\n".encode() + body).hexdigest()
        config = self.config
        with self._lock:
            arrival = self._seen[digest]
            self._seen[digest] += 1
        storm, fail, status, lost, drop, before, refuse = _uniforms(
            f"{config.seed}|{digest}|{arrival}", 7)
        dropped = None if drop >= config.drop_rate else (
            "before" if before < config.drop_before else "after")
        refused = refuse < config.refuse_rate
        if is_link:
            fate = Fate(drop=dropped)
        elif storm < config.storm_rate:
            fate = Fate(storm=True, refuse=refused)
        elif fail < config.fail_rate:
            fate = Fate(fail=FAIL_STATUSES[int(status * len(FAIL_STATUSES))], refuse=refused)
        else:
            fate = Fate(lost=method == "POST" and lost < config.lost_answer_rate, drop=dropped,
                        refuse=refused)
        with self._lock:
            self.applied.update((route, kind) for kind in fate.kinds())
        return fate

    def totals(self) -> dict[str, int]:
        """Faults applied by kind: storm, fail (any 5xx), lost, drop (either side), refuse."""
        with self._lock:
            found = dict.fromkeys(KINDS, 0)
            for (_, kind), times in self.applied.items():
                name = "fail" if kind.isdigit() else kind.split("_", 1)[0]
                found[name] += times
            return found

    def by_route(self) -> dict[str, dict[str, int]]:
        """Faults applied per route and kind (5xx by status, drops by side of the work)."""
        with self._lock:
            shown: dict[str, dict[str, int]] = {}
            for (route, kind), times in sorted(self.applied.items()):
                shown.setdefault(route, {})[kind] = times
            return shown


def _uniforms(key: str, count: int) -> list[float]:
    """``count`` numbers in [0, 1) from a hash of ``key``. (random.Random seeded with keys that
    differ in their last characters gave correlated first draws: one request was dropped 9
    times in 10 at a 30% rate.)"""
    digest = hashlib.sha512(key.encode()).digest()
    return [int.from_bytes(digest[8 * n: 8 * n + 8], "big") / 2.0**64 for n in range(count)]
