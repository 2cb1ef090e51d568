"""What a run shows while it works.

The engine only calls ``Reporter.emit(kind, key=..., **data)`` (``runner.events``). Reporters turn events
into output: ``PlainReporter`` (timestamped lines, for logs and pipes), ``JsonReporter``
(one JSON object per line on stdout), ``QuietReporter`` (nothing), and ``LiveReporter``
(a rich live display on a terminal, in ``runner.display.live``). Reporters are called from
worker threads, so each one serialises its output.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from runner.events import EventKind


class QuietReporter:
    def emit(self, event: EventKind, key: str | None = None, **data: Any) -> None:
        pass

    def close(self) -> None:
        pass


class JsonReporter:
    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self._lock = threading.Lock()

    def emit(self, event: EventKind, key: str | None = None, **data: Any) -> None:
        line = {"ts": round(time.time(), 3), "event": event, **({"key": key} if key else {}), **data}
        with self._lock:
            self.out.write(json.dumps(line, default=str) + "\n")
            self.out.flush()

    def close(self) -> None:
        pass


HEARTBEAT_SECONDS = 300.0


class PlainReporter:
    """Timestamped lines, one per meaningful change (no per-poll noise)."""

    def __init__(self, out: TextIO | None = None, prefix: str = "",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out or sys.stderr
        self.prefix = prefix  # several pipelines in one command: "luna: " names each line
        self._lock = threading.Lock()
        self._last_training: str | None = None
        self._clock = clock
        self._training_said = 0.0

    def emit(self, event: EventKind, key: str | None = None, **data: Any) -> None:
        line = describe(event, key, data)
        if event == "training":
            # A new status always; the same one again only as a heartbeat every few minutes,
            # so a CI log is never silent for the hours a training takes.
            now = self._clock()
            same = data.get("status") == self._last_training
            if same and now - self._training_said < HEARTBEAT_SECONDS:
                return
            self._last_training, self._training_said = data.get("status"), now
        if line is None:
            return
        stamp = time.strftime("%H:%M:%S")
        with self._lock:
            self.out.write(f"{stamp} {self.prefix}{line}\n")
            self.out.flush()

    def close(self) -> None:
        pass


def describe(kind: EventKind, key: str | None, data: dict[str, Any]) -> str | None:
    """One human line for an event, or None for events too fine-grained for a log."""
    if kind == "plan":
        return data.get("text")
    if kind == "phase":
        total = f" ({data['total']} images)" if data.get("total") else ""
        return f"== {data.get('name')}{total}"
    if kind == "step":
        state = data.get("state")
        if state == "done" and data.get("path"):
            return f"{key}: done -> {_shown(str(data['path']))}"
        if state == "done":
            rid = f" (id {data['remote_id']})" if data.get("remote_id") else ""
            return f"{key}: done{rid}"
        if state == "failed":
            return f"{key}: FAILED: {data.get('error')}"
        return None
    if kind == "training":
        elapsed = _duration(data.get("elapsed"))
        return f"training model {data.get('model_id')}: {data.get('status')}{elapsed}"
    if kind == "scene":
        state = data.get("state")
        if state == "recognised":
            return f"{key}: its image is already in place ({_shown(str(data.get('path')))}, " \
                   "as recorded beside it): kept, not generated again"
        return f"{key}: {state}" + (f" ({data['reason']})" if data.get("reason") else "") \
            if state in ("regenerating",) else None
    if kind == "wait":
        return (f"waiting {max(1, round(float(data.get('seconds', 0))))} s for Bria's rate limit "
                f"on {plain_endpoint(str(data.get('endpoint')))}")
    if kind == "outage":
        return outage_line(data)
    if kind in ("notice", "moved", "adopted"):
        return data.get("message") or f"{key}: kept earlier output at {_shown(str(data.get('dst')))}"
    if kind == "gallery":
        # After a finished run the last line names the page; here only before an error.
        return None if data.get("outcome") == "done" else f"gallery: {_shown(str(data['path']))}"
    if kind == "finished":
        return f"finished: {data.get('images', 0)} new image(s)"
    return None


def outage_line(data: dict[str, Any]) -> str:
    """``Bria unreachable for 4m12s, still waiting (training is not affected)``."""
    minutes, secs = divmod(int(data.get("seconds") or 0), 60)
    hours, minutes = divmod(minutes, 60)
    down = f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
    running = f" ({data['running']} is not affected)" if data.get("running") else ""
    return f"Bria unreachable for {down}, still waiting{running}"


# What each rate-limited endpoint is, in the words a user would use.
ENDPOINT_WORDS = (("/v2/status/", "status checks"), ("/images", "uploads"),
                  ("/start_training", "training starts"), ("/models", "models"),
                  ("/datasets", "datasets"), ("/projects", "projects"),
                  ("/image/generate", "image generation"), ("/structured_prompt", "scene references"),
                  ("/generate_visual_schema", "identity"), ("/generate_prefix", "identity"),
                  ("/text-to-image", "image generation"), ("/reimagine", "image generation"))


def plain_endpoint(endpoint: str) -> str:
    for part, words in ENDPOINT_WORDS:
        if part in endpoint:
            return words
    return endpoint


def _shown(path: str) -> str:
    """A path relative to the current folder when it is below it: shorter to read."""
    try:
        return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path
    except ValueError:
        return path


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return ""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f" ({hours}h{minutes:02d}m)" if hours else f" ({minutes}m{secs:02d}s)"
