"""One bria-run run in a fresh process, timed from the inside; prints one JSON line.

    BENCH_API_TOKEN=... python -m tests.benchmarks.worker '{"pipeline": ..., ...}'

It does what ``runner.app.run`` does (load and validate the file, open the state, hash the
inputs, plan, then load the HTTP client and execute) with two differences a benchmark needs:
the client's rate-limit window is scaled like the simulator's, and the first request on the
wire is timestamped.
Times are ``time.time()`` stamps, so the parent can measure from before it spawned us.
"""

from __future__ import annotations

import time

STARTED = time.time()  # before any heavy import: "process start" as seen from inside

import json
import os
import resource
import sys
from pathlib import Path
from typing import Any


def _timed_client(job: dict[str, Any], token: str) -> tuple[Any, Any]:
    """A client whose transport remembers when the first request went out. httpx is
    imported here, after planning, as bria-run itself does."""
    import httpx

    from runner.bria.client import BriaClient

    class TimedTransport(httpx.HTTPTransport):
        first: float | None = None
        trace: list[tuple[float, float, str, str, int]] | None = [] if job.get("trace") else None

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            sent = time.time()
            if self.first is None:
                self.first = sent
            response = super().handle_request(request)
            if self.trace is not None:
                self.trace.append((sent, time.time(), request.method, request.url.path,
                                   response.status_code))
            return response

    transport = TimedTransport()
    client = BriaClient(job["base_url"], token, rpm=job.get("rpm"),
                        window=job.get("window", 60.0), transport=transport)
    return client, transport


class _MarkingReporter:
    """Remembers when each phase began and when the first/last step of each kind ended."""

    def __init__(self, *, trace: bool = False) -> None:
        self.marks: dict[str, float] = {}
        self.done: dict[str, list[float]] = {}  # when each step of a kind ended
        self.events: list[tuple[float, str, str | None, str]] | None = [] if trace else None

    def emit(self, event: str, key: str | None = None, **data: Any) -> None:
        now = time.time()
        if self.events is not None:
            self.events.append((now, event, key, str(data.get("state", ""))))
        if event == "phase":
            self.marks.setdefault(f"phase:{data.get('name')}", now)
        elif event == "step" and data.get("state") == "done":
            self.marks.setdefault(f"first_done:{data.get('kind')}", now)
            self.marks[f"last_done:{data.get('kind')}"] = now
            self.done.setdefault(str(data.get("kind")), []).append(now)

    def close(self) -> None:
        pass


def run(job: dict[str, Any], token: str) -> dict[str, Any]:
    from runner.app import plan_from_state
    from runner.engine.context import Context, RunOptions
    from runner.engine.executor import Engine
    from runner.pipeline.loader import load_pipeline
    from runner.pipeline.places import document_cache
    from runner.state.rows import ApiIdentity
    from runner.state.store import Store

    out: dict[str, Any] = {"started": STARTED, "imported": time.time()}
    cpu0 = time.process_time()
    pipeline, _warnings = load_pipeline(Path(job["pipeline"]),
                                        cache=document_cache(Path(job["pipeline"])))
    out["loaded"], out["cpu_load"] = time.time(), time.process_time() - cpu0
    with Store.open(job["state"], ApiIdentity("real", job["base_url"])) as store:
        hashes = dict(pipeline.image_hashes)
        the_plan = plan_from_state(pipeline, store, hashes)
        out["planned"], out["cpu_plan"] = time.time(), time.process_time() - cpu0
        out["steps"] = sum(1 for s in the_plan.steps if s.is_work)
        out["maxrss_planned_mb"] = _maxrss_mb()
        if job.get("plan_only"):
            return out
        options = RunOptions(job_poll=job.get("job_poll", 2.0), poll_every=job.get("poll_every"))
        reporter = _MarkingReporter(trace=bool(job.get("trace")))
        client, transport = _timed_client(job, token)
        with client:
            ctx = Context(pipeline, the_plan, store, client, reporter, options, hashes=hashes)
            cpu1, began = time.process_time(), time.time()
            engine = Engine(ctx)
            summary = engine.run()
            out["peaks"] = {str(k): v for k, v in engine.peaks.items()}
            out["job_polls"], out["jobs"] = ctx.pacer.polls, ctx.pacer.jobs
            out["cpu_engine"] = time.process_time() - cpu1
            out["began"], out["ended"] = began, time.time()
            out["first_request"] = transport.first
            out["images"] = summary.images
            out["marks"] = reporter.marks
            out["done"] = reporter.done
            out["client"] = client.stats()
            if transport.trace is not None:
                out["trace"] = transport.trace
                out["events"] = reporter.events
    return out


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str]) -> int:
    job = json.loads(argv[1])
    out = run(job, os.environ["BENCH_API_TOKEN"])
    out["maxrss_mb"] = _maxrss_mb()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
