"""The live terminal display of a run (rich): phase, uploads n/N, training status with
elapsed time, each scene's state, and back-off countdowns when rate limited.

Imported only when stderr is a terminal, so rich never slows `validate` or pipes.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from runner.display.reporters import describe
from runner.events import EventKind

STYLES = {"done": "green", "failed": "red", "generating": "cyan", "downloading": "cyan",
          "regenerating": "yellow", "queued": "dim", "started": "cyan"}


class LiveReporter:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._lock = threading.Lock()
        self.phase = "starting"
        self.uploads = [0, 0]
        self.training: dict[str, Any] = {}
        self.scenes: dict[str, str] = {}
        self.waits: dict[str, float] = {}
        self.notes: list[str] = []
        self._live = Live(self._render(), console=self.console, refresh_per_second=4,
                          transient=False, get_renderable=self._render)
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
        elif kind == "step" and data.get("kind") == "upload":
            if data.get("state") == "done":
                self.uploads[0] += 1
                self.uploads[1] = max(self.uploads[1], self.uploads[0])
        elif key and (kind == "scene" or (kind == "step" and data.get("kind") == "scene")):
            self.scenes[key] = str(data.get("state"))
        elif kind == "training":
            self.training = {**data, "seen": time.monotonic()}
        elif kind == "wait":
            self.waits[str(data.get("endpoint"))] = time.monotonic() + float(data.get("seconds", 0))
        elif kind in ("notice", "plan", "moved", "finished", "gallery", "outage", "adopted"):
            line = describe(kind, key, data)
            if line:
                self.notes = (self.notes + [line])[-4:]

    def _render(self) -> Group:
        table = Table.grid(padding=(0, 2))
        table.add_row(Text("phase", style="bold"), self.phase)
        if self.uploads[1]:
            table.add_row(Text("uploads", style="bold"), f"{self.uploads[0]}/{self.uploads[1]}")
        if self.training:
            elapsed = float(self.training.get("elapsed") or 0.0)
            if self.training.get("status") not in ("Completed", "Failed", "Stopped"):
                elapsed += time.monotonic() - float(self.training["seen"])  # still running
            table.add_row(Text("training", style="bold"),
                          f"model {self.training.get('model_id')}: {self.training.get('status')}"
                          f" ({int(elapsed) // 60}m{int(elapsed) % 60:02d}s)")
        now = time.monotonic()
        for endpoint, until in sorted(self.waits.items()):
            if until > now:
                table.add_row(Text("rate limit", style="yellow"),
                              f"{endpoint}: {until - now:4.1f}s")
        for key, state in sorted(self.scenes.items()):
            table.add_row(Text(key), Text(state, style=STYLES.get(state, "")))
        return Group(*[Text(n, style="dim") for n in self.notes], table)
