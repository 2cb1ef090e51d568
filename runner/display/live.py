"""The live terminal display of a run (rich): phase, uploads n/N, training status with
elapsed time, each scene's state, and back-off countdowns when rate limited.

Imported only when stderr is a terminal, so rich never slows `validate` or pipes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from runner.display.reporters import describe, plain_endpoint
from runner.events import EventKind

STYLES = {"done": "green", "failed": "red", "generating": "cyan", "downloading": "cyan",
          "regenerating": "yellow", "queued": "dim", "started": "cyan"}


# Failed scenes first, then those in flight, then the queue; finished ones last.
ORDER = {"failed": 0, "generating": 1, "downloading": 1, "regenerating": 1, "started": 1,
         "recognised": 1, "queued": 2, "done": 3}
IN_FLIGHT = frozenset(k for k, v in ORDER.items() if v == 1)


class LiveReporter:
    def __init__(self, console: Console | None = None, *, start: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console or Console(stderr=True)
        self.clock = clock
        self._lock = threading.Lock()
        self._generation_began: float | None = None
        self.phase = "starting"
        self.uploads = [0, 0]
        self.training: dict[str, Any] = {}
        self.scenes: dict[str, str] = {}
        self.waits: dict[str, float] = {}
        self.notes: list[list[Any]] = []  # [line, times said in a row]
        self._live = Live(self._render(), console=self.console, refresh_per_second=4,
                          transient=False, get_renderable=self._render)
        if start:
            self._live.start()

    def emit(self, event: EventKind, key: str | None = None, **data: Any) -> None:
        with self._lock:
            self._apply(event, key, data)

    def close(self) -> None:
        self._live.stop()

    def _apply(self, kind: EventKind, key: str | None, data: dict[str, Any]) -> None:
        if kind == "plan":
            self.uploads[1] = int(data.get("uploads") or 0)
            self.scenes.update({k: "queued" for k in data.get("scenes") or ()})
        if kind == "phase":
            self.phase = str(data.get("name"))
            if self.phase == "generation":
                self.waits.clear()
                self._generation_began = self.clock()
        elif kind == "step" and data.get("kind") == "upload":
            if data.get("state") == "done":
                self.uploads[0] += 1
                self.uploads[1] = max(self.uploads[1], self.uploads[0])
        elif key and (kind == "scene" or (kind == "step" and data.get("kind") == "scene")):
            self.scenes[key] = str(data.get("state"))
        elif kind == "training":
            self.training = {**data, "seen": self.clock()}
        elif kind == "wait":
            self.waits[str(data.get("endpoint"))] = self.clock() + float(data.get("seconds", 0))
        elif kind in ("notice", "plan", "moved", "finished", "gallery", "outage", "adopted"):
            self._note(describe(kind, key, data))

    def _note(self, line: str | None) -> None:
        """The last few notices; one said again in a row is counted, not repeated."""
        if not line:
            return
        if self.notes and self.notes[-1][0] == line:
            self.notes[-1][1] += 1
        else:
            self.notes = (self.notes + [[line, 1]])[-4:]

    def summary(self) -> str | None:
        """``scenes 12/30 · 4 generating · 2 failed · about 3 min left``."""
        if not self.scenes:
            return None
        states = list(self.scenes.values())
        done = states.count("done")
        parts = [f"scenes {done}/{len(states)}"]
        flying = sum(1 for s in states if s in IN_FLIGHT)
        if flying:
            parts.append(f"{flying} generating")
        if states.count("failed"):
            parts.append(f"{states.count('failed')} failed")
        left = len(states) - done - states.count("failed")
        if done and left and self._generation_began is not None:
            per_image = (self.clock() - self._generation_began) / done
            parts.append(f"about {max(1, round(per_image * left / 60))} min left")
        return " · ".join(parts)

    def _render(self) -> Group:
        table = Table.grid(padding=(0, 2))
        table.add_row(Text("phase", style="bold"), self.phase)
        if self.uploads[1]:
            table.add_row(Text("uploads", style="bold"), f"{self.uploads[0]}/{self.uploads[1]}")
        if self.training:
            elapsed = float(self.training.get("elapsed") or 0.0)
            if self.training.get("status") not in ("Completed", "Failed", "Stopped"):
                elapsed += self.clock() - float(self.training["seen"])  # still running
            table.add_row(Text("training", style="bold"),
                          f"model {self.training.get('model_id')}: {self.training.get('status')}"
                          f" ({int(elapsed) // 60}m{int(elapsed) % 60:02d}s)")
        now = self.clock()
        for endpoint, until in sorted(self.waits.items()):
            if until > now:
                table.add_row(Text("rate limit", style="yellow"),
                              f"waiting {max(1, round(until - now))} s for Bria's rate limit on "
                              f"{plain_endpoint(endpoint)}")
        for key, state in sorted(self.scenes.items(), key=lambda i: (ORDER.get(i[1], 1), i[0])):
            table.add_row(Text(key), Text(state, style=STYLES.get(state, "")))
        notes = [Text(line if times == 1 else f"{line} (x{times})", style="dim")
                 for line, times in self.notes]
        summary = self.summary()
        return Group(*notes, *([Text(summary, style="bold")] if summary else []), table)
