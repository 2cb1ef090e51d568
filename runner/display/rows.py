"""The display of several pipelines in one command: JSON events tagged with their pipeline,
plain lines prefixed with its name, or (on a terminal) one live row per pipeline: phase,
uploads, training, scenes done/total and the latest line.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from runner.display.reporters import JsonReporter, PlainReporter, QuietReporter, describe
from runner.events import EventKind, Reporter


class Board:
    """The display of one command's pipelines: ``reporter_for(target)`` gives each its own
    (a tagged JSON stream, a prefixed plain log, or a live row on a terminal)."""

    def __init__(self, *, as_json: bool, quiet: bool, live: bool) -> None:
        self.as_json, self.quiet = as_json, quiet
        self.shared: Any = JsonReporter() if as_json else QuietReporter()
        if live and not (as_json or quiet):
            self.shared = LiveRows()

    def reporter_for(self, target: Any) -> Reporter:
        name = target.path.stem
        if self.as_json:
            return Tagged(self.shared, name)
        if self.quiet:
            return QuietReporter()
        if isinstance(self.shared, LiveRows):
            return self.shared.row(name)
        return PlainReporter(prefix=f"{name}: ")

    def close(self) -> None:
        self.shared.close()


class Tagged:
    """Passes events on with ``pipeline=<name>`` added (for JSON lines)."""

    def __init__(self, inner: Reporter, name: str) -> None:
        self.inner, self.name = inner, name

    def emit(self, event: EventKind, key: str | None = None, **data: Any) -> None:
        self.inner.emit(event, key, pipeline=self.name, **data)

    def close(self) -> None:
        pass  # the shared reporter is closed once, by whoever made it


class _Row:
    """One pipeline's row; its ``emit`` is that pipeline's reporter."""

    def __init__(self, board: LiveRows, name: str) -> None:
        self.board, self.name = board, name
        self.phase, self.training, self.note = "starting", "", ""
        self.uploads, self.scenes = [0, 0], [0, 0]

    def emit(self, event: EventKind, key: str | None = None, **data: Any) -> None:
        with self.board.lock:
            self._apply(event, data, describe(event, key, data))

    def _apply(self, kind: EventKind, data: dict[str, Any], line: str | None) -> None:
        if kind == EventKind.PLAN:
            self.uploads[1] = int(data.get("uploads") or 0)
            self.scenes[1] = len(data.get("scenes") or ())
        elif kind == EventKind.PHASE:
            self.phase = str(data.get("name"))
        elif kind == EventKind.STEP and data.get("state") == "done":
            counter = {"upload": self.uploads, "scene": self.scenes}.get(str(data.get("kind")))
            if counter is not None:
                counter[0] += 1
        elif kind == EventKind.TRAINING:
            self.training = f"model {data.get('model_id')}: {data.get('status')}"
        elif kind == EventKind.FINISHED:
            self.phase = "done"
        if line and kind not in (EventKind.TRAINING, EventKind.PHASE):
            self.note = line

    def close(self) -> None:
        pass

    def cells(self) -> list[str]:
        uploads = f"{self.uploads[0]}/{self.uploads[1]}" if self.uploads[1] else "-"
        scenes = f"{self.scenes[0]}/{self.scenes[1]}" if self.scenes[1] else "-"
        return [self.name, self.phase, uploads, self.training or "-", scenes, self.note[-60:]]


class LiveRows:
    """A rich live table, one row per pipeline. Imported only on a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.lock = threading.Lock()
        self.rows: list[_Row] = []
        self._started = time.monotonic()
        self._live = Live(console=Console(stderr=True), refresh_per_second=4,
                          get_renderable=self._render)
        self._live.start()

    def row(self, name: str) -> _Row:
        with self.lock:
            self.rows.append(_Row(self, name))
            return self.rows[-1]

    def close(self) -> None:
        self._live.stop()

    def _render(self) -> Any:
        from rich.table import Table

        table = Table(box=None, padding=(0, 2), header_style="bold")
        for title in ("pipeline", "phase", "uploads", "training", "scenes", "latest"):
            table.add_column(title)
        with self.lock:
            for row in self.rows:
                table.add_row(*row.cells())
        return table
