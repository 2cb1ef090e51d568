"""What a run reports: the kinds of event, defined once, and the ``Reporter`` that shows them.

The engine and the app emit events; ``runner.display`` turns them into lines, JSON or a live
display; the state keeps the ones that matter later in its event log. Nothing here imports the
rest of bria-run, so every package may use it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol


class EventKind(StrEnum):
    PLAN = "plan"  # what the run is about to do (text, credits)
    PHASE = "phase"  # training or generation begins (name, total)
    STEP = "step"  # a step started, finished or failed (kind, state, remote_id, path, error)
    TRAINING = "training"  # the training's status changed or was polled (status, elapsed)
    SCENE = "scene"  # a scene's progress (generating, downloading, regenerating)
    WAIT = "wait"  # the client waits for the rate limit (endpoint, seconds)
    OUTAGE = "outage"  # Bria has not answered for a while; still trying (endpoint, seconds, running)
    NOTICE = "notice"  # a sentence for the user (message)
    MOVED = "moved"  # an earlier output was moved aside (src, dst)
    FINISHED = "finished"  # the run did everything it was asked (images)
    GALLERY = "gallery"  # the results page was written (path, outcome)
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM stopped the run
    RECONCILED = "reconciled"  # an unknown POST outcome was found at Bria (op, remote_id)
    ADOPTED = "adopted"  # a resource found at Bria by its name was used, not created (what, remote_id)
    RESENDING = "resending"  # an unknown POST outcome is sent again (op, proven)
    LOCK_BROKEN = "lock_broken"  # a dead runner's lock was broken (pid, host, why)


class Reporter(Protocol):
    """Shows events. Called from worker threads: each reporter serialises its output."""

    def emit(self, event: EventKind, key: str | None = None, **data: Any) -> None: ...

    def close(self) -> None: ...
