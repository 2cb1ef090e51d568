"""Waiting for a v2 job: the one polling loop, used by the engine (paced with every job in
flight) and by anything else that drives the client (paced at a fixed cadence).

Bria answers ``GET /v2/status/{id}`` with the job's outcome in the body, so the loop only
reads ``JobStatus.outcome``: a result dict when done, ``None`` while in progress, a typed error
for ERROR, UNKNOWN and NOT_FOUND.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runner.bria.errors import JobTimeout

if TYPE_CHECKING:  # the engine imports this loop; it must not load httpx before the plan
    from runner.bria.answers import JobStatus


def poll_until_done(
    poll: Callable[[], JobStatus],
    request_id: str,
    *,
    pause: Callable[[float], None],
    interval: Callable[[], float],
    should_stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
    timeout: float | None = None,
) -> dict[str, Any] | None:
    """Poll until the job ends: its result, or ``None`` when ``should_stop`` says so first.
    ``interval`` is asked before every pause, so the pacing may change while a job runs; a job
    still in progress after ``timeout`` seconds raises JobTimeout."""
    deadline = None if timeout is None else clock() + timeout
    while True:
        result = poll().outcome(request_id)
        if result is not None:
            return result
        if should_stop():
            return None
        wait = interval()
        if deadline is not None and clock() + wait > deadline:
            raise JobTimeout(request_id, f"still IN_PROGRESS after {timeout:g} s")
        pause(wait)
