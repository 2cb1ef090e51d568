"""S1: a rate-limited run end to end, its floor, and the hand-written baseline beside it.

Bria's minute is compressed: the simulator's ``rate_window`` and the client's ``window``
are both ``window`` seconds, and every latency and duration is scaled by the same factor
(``window / 60``), so the figures read as Bria's times divided by ten.
"""

from __future__ import annotations

import math
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.benchmarks.baseline import BaselineResult, BaselineSettings, run_baseline
from tests.benchmarks.child import WorkerResult, run_worker
from tests.benchmarks.fixtures import small_image, text_scenes, write_pipeline
from tests.benchmarks.simproc import SimProcess
from tests.benchmarks.table import Outcome, Row

UPLOAD = "POST /v1/tailored-gen/datasets/{id}/images"
SUBMIT = "POST /v2/image/generate/tailored"
STATUS = "GET /v2/status/{id}"
CHAIN_CALLS = 7  # project, dataset, visual schema, PUT schema, PUT completed, model, start


@dataclass(frozen=True)
class S1Config:
    images: int = 60
    scenes: int = 40
    rpm: int = 30  # per endpoint per window: 60 uploads and 40 jobs each need two windows
    window: float = 6.0  # Bria's minute / 10
    concurrency: int = 16  # the file's maximum, so the rate limit binds, not concurrency
    latency: float = 0.05  # every call (Bria ~0.5 s)
    upload_latency: float = 0.2  # Bria ~2 s for a base64 image
    submit_latency: float = 0.1
    status_latency: float = 0.03
    generation_seconds: float = 1.0  # Bria ~10 s
    training_seconds: float = 3.0  # "short" (Bria: hours)
    job_poll: float = 0.2  # Bria's cadence of 2 s, scaled
    training_poll: float = 0.3

    @property
    def scale(self) -> float:
        return self.window / 60.0

    def sim_settings(self) -> dict[str, Any]:
        # The simulator adds an endpoint's extra latency to the common one.
        extra = {UPLOAD: self.upload_latency, SUBMIT: self.submit_latency,
                 STATUS: self.status_latency}
        return {"rpm": self.rpm, "rate_window": self.window, "latency": self.latency,
                "latency_by_endpoint": {k: v - self.latency for k, v in extra.items()},
                "training_seconds": self.training_seconds,
                "generation_seconds": self.generation_seconds, "result_size": 256}


SMOKE = S1Config(images=6, scenes=4, rpm=4, window=0.6, concurrency=4, latency=0.005,
                 upload_latency=0.02, submit_latency=0.01, status_latency=0.005,
                 generation_seconds=0.1, training_seconds=0.3, job_poll=0.05,
                 training_poll=0.05)


def phase_floor(n: int, concurrency: int, rpm: int, window: float, per_request: float) -> float:
    """The least time for ``n`` requests of ``per_request`` seconds each: no more than
    ``concurrency`` at once, and no more than ``rpm`` arrivals in any ``window``."""
    by_concurrency = math.ceil(n / concurrency) * per_request
    by_limit = (math.ceil(n / rpm) - 1) * window + per_request
    return max(by_concurrency, by_limit)


def floor(c: S1Config) -> tuple[float, str]:
    """What the limits and latencies imply, and how it was derived."""
    chain = CHAIN_CALLS * c.latency
    uploads = phase_floor(c.images, c.concurrency, c.rpm, c.window, c.upload_latency)
    training = c.training_seconds + c.latency  # plus the one GET that sees it Completed
    # A job: submit, generation, one status poll; submits and polls each obey the limit.
    per_job = c.submit_latency + c.generation_seconds + c.status_latency
    generation = phase_floor(c.scenes, c.concurrency, c.rpm, c.window, per_job)
    how = (f"floor = {CHAIN_CALLS} chain calls {chain:.2f} + uploads {uploads:.2f} "
           f"+ training {training:.2f} + generation {generation:.2f} s; a phase of n requests "
           f"= max(ceil(n/concurrency)*t, (ceil(n/rpm)-1)*window + t)")
    return chain + uploads + training + generation, how


def _inputs(root: Path, c: S1Config) -> tuple[Path, list[Path]]:
    images = [small_image(root / "training" / f"{i:03d}.png", i) for i in range(c.images)]
    return write_pipeline(root, text_scenes(c.scenes), concurrency=c.concurrency), images


def _bria_run(root: Path, pipeline: Path, c: S1Config) -> tuple[WorkerResult, dict[str, Any]]:
    with SimProcess(c.sim_settings()) as sim:
        job = {"pipeline": str(pipeline), "state": str(root / "state.sqlite"),
               "base_url": sim.base_url, "rpm": c.rpm, "window": c.window,
               "job_poll": c.job_poll, "poll_every": c.training_poll}
        return run_worker(job, sim.token), sim.stats()


def _baseline(root: Path, images: list[Path], c: S1Config) -> BaselineResult:
    settings = BaselineSettings(upload_pause=0.5 * c.scale, generation_pause=1.0 * c.scale,
                                job_poll=c.job_poll, training_poll=c.training_poll)
    prompts = [s["prompt"] for s in text_scenes(c.scenes)]
    with SimProcess(c.sim_settings()) as sim:
        return run_baseline(sim.base_url, sim.token, images, prompts, root / "baseline-out",
                            settings)


def run_s1(smoke: bool) -> Outcome:
    c = SMOKE if smoke else S1Config()
    with tempfile.TemporaryDirectory(prefix="bench-s1-") as tmp:
        root = Path(tmp)
        pipeline, images = _inputs(root, c)
        found: dict[str, BaselineResult] = {}
        # Side by side: each against its own simulator with the same settings.
        beside = threading.Thread(target=lambda: found.update(b=_baseline(root, images, c)))
        beside.start()
        result, stats = _bria_run(root, pipeline, c)
        beside.join()
    return _outcome(c, result, stats, found["b"])


def _outcome(c: S1Config, result: WorkerResult, stats: dict[str, Any],
             base: BaselineResult) -> Outcome:
    data = result.data
    makespan = data["ended"] - data["began"]
    bound, how = floor(c)
    marks = data["marks"]
    polls = stats["calls"].get(STATUS, 0)
    notes = (f"{c.images} images, {c.scenes} scenes, rpm {c.rpm} per {c.window:g} s, "
             f"concurrency {c.concurrency}; 429s {stats['rate_limited']} "
             f"(baseline {base.rate_limited}); {polls} status polls for {c.scenes} jobs")
    details = (
        f"S1: {how}.",
        (f"S1: bria-run's uploads ended at {marks['last_done:upload'] - data['began']:.2f} s, "
         f"training at {marks['last_done:train'] - data['began']:.2f} s, the last image at "
         f"{makespan:.2f} s; runner CPU {data['cpu_engine']:.2f} s."),
        (f"S1: the baseline's pauses are the guide's scaled like every other time "
         f"(x{c.scale:g}: {0.5 * c.scale:g} s, {1.0 * c.scale:g} s) and it polls as often as "
         f"bria-run ({c.job_poll:g} s jobs, {c.training_poll:g} s training)."),
    )
    efficiency = bound / makespan
    row = Row("S1 rate-limited makespan", makespan, "s", baseline=base.seconds, floor=bound,
              goal="efficiency >= 0.9, no 429",
              met=efficiency >= 0.9 and stats["rate_limited"] == 0, notes=notes)
    return Outcome((row,), details)
