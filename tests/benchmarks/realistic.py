"""S6 and S7: the example pipeline's shape at Bria's real latencies, with default settings.

30 training images and 20 text scenes, ``concurrency`` not set (``auto``), against the floor
the budget and latencies allow and against the guide-style baseline. S6: the Starter plan's
60 requests a minute; S7: Enterprise's 1000. Generations take 10-20 s, each job its own time
drawn from the simulator's seed, so bria-run and the baseline get the same durations.

Time runs faster by ``scale`` (x0.25: Bria's minute is 15 s), and honestly so: every time on
Bria's side (the rate-limit window, every latency, generation and training times) and every
time bria-run uses (its limiter's window, its status cadence ``job_poll``, its training poll)
is multiplied by the same factor; the flow control's own constants are fractions of the
window. What does not scale is bria-run's CPU per step (a few ms), which therefore weighs four
times more here than against Bria.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from runner.engine.flow import AUTO_CAP
from runner.simulator.jobs import job_extra
from tests.benchmarks.baseline import BaselineResult, BaselineSettings, run_baseline
from tests.benchmarks.child import WorkerResult, run_worker
from tests.benchmarks.fixtures import small_image, text_scenes, write_pipeline
from tests.benchmarks.rate import CHAIN_CALLS, STATUS, SUBMIT, UPLOAD, phase_floor
from tests.benchmarks.simproc import SimProcess
from tests.benchmarks.table import Outcome, Row


@dataclass(frozen=True)
class RealConfig:
    """Bria's times in seconds, as Bria has them; ``scale`` is applied when sent."""

    name: str
    rpm: int
    scale: float = 0.25
    images: int = 30
    scenes: int = 20
    latency: float = 0.5  # every call
    upload: float = 2.0  # a base64 image
    submit: float = 1.0
    status: float = 0.3
    generation: float = 10.0  # the shortest job; each adds up to ``spread``
    spread: float = 10.0
    training: float = 20.0  # short: training is not what S6 measures
    job_poll: float = 2.0  # bria-run's default status cadence (RunOptions.job_poll)
    training_poll: float = 1.0  # both poll training this often (the issue measured so)
    seed: int = 7

    @property
    def window(self) -> float:
        return 60.0 * self.scale

    def t(self, seconds: float) -> float:
        return seconds * self.scale

    def durations(self, first: int = 0) -> list[float]:
        """Each generation job's time (scaled), as the simulator will draw it; ``first``:
        the number of the simulator's first job (a second run's jobs come after the first's)."""
        return [self.t(self.generation) + job_extra(self.seed, n, self.t(self.spread))
                for n in range(first, first + self.scenes)]

    def sim_settings(self) -> dict[str, Any]:
        extra = {UPLOAD: self.upload, SUBMIT: self.submit, STATUS: self.status}
        return {"rpm": self.rpm, "rate_window": self.window, "latency": self.t(self.latency),
                "latency_by_endpoint": {k: self.t(v - self.latency) for k, v in extra.items()},
                "training_seconds": self.t(self.training),
                "generation_seconds": self.t(self.generation),
                "generation_spread": self.t(self.spread), "seed": self.seed,
                "result_size": 256}


S6 = RealConfig("S6", rpm=60)
S7 = RealConfig("S7", rpm=1000)


def smoke(c: RealConfig) -> RealConfig:
    return replace(c, scale=0.02, images=6, scenes=3)


def floor(c: RealConfig) -> tuple[float, str]:
    """Chain calls, uploads, training, then the jobs: each phase as the budget allows."""
    chain = CHAIN_CALLS * c.t(c.latency)
    uploads = phase_floor(c.images, AUTO_CAP, c.rpm, c.window, c.t(c.upload))
    training = c.t(c.training) + c.t(c.latency)
    assert c.scenes <= min(c.rpm, AUTO_CAP), "the floor below assumes one batch of jobs"
    generation = c.t(c.submit) + max(c.durations()) + c.t(c.status)
    how = (f"floor = {CHAIN_CALLS} chain calls {chain:.2f} + uploads {uploads:.2f} + training "
           f"{training:.2f} + jobs {generation:.2f} s (all {c.scenes} submitted at once, the "
           f"longest drawn job {max(c.durations()):.2f} s, one status poll)")
    return chain + uploads + training + generation, how


def again_floor(c: RealConfig) -> float:
    """A second run of new scenes in the same state: the jobs alone (training is done)."""
    return c.t(c.submit) + max(c.durations(c.scenes)) + c.t(c.status)


def _bria_run(root: Path, pipeline: Path, c: RealConfig
              ) -> tuple[WorkerResult, dict[str, Any], WorkerResult, dict[str, Any]]:
    """The run, then (same simulator, same state) a run of as many new scenes: the second
    starts from the durations the first recorded. Each run's simulator figures apart."""
    with SimProcess(c.sim_settings()) as sim:
        job = {"pipeline": str(pipeline), "state": str(root / "state.sqlite"),
               "base_url": sim.base_url, "rpm": c.rpm, "window": c.window,
               "job_poll": c.t(c.job_poll), "poll_every": c.t(c.training_poll)}
        first, stats = run_worker(job, sim.token), sim.stats()
        write_pipeline(root, text_scenes(c.scenes, prefix="again"), concurrency=None)
        time.sleep(c.window)  # a fresh window: the first run's requests do not slow this one
        second = run_worker(job, sim.token)
        return first, stats, second, _minus(sim.stats(), stats)


def _minus(now: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    calls = {k: v - before["calls"].get(k, 0) for k, v in now["calls"].items()}
    return {**now, "calls": calls, "rate_limited": now["rate_limited"] - before["rate_limited"]}


def _baseline(root: Path, images: list[Path], c: RealConfig) -> BaselineResult:
    settings = BaselineSettings(upload_pause=c.t(0.5), generation_pause=c.t(1.0),
                                job_poll=c.t(c.job_poll), training_poll=c.t(c.training_poll))
    prompts = [s["prompt"] for s in text_scenes(c.scenes)]
    with SimProcess(c.sim_settings()) as sim:
        return run_baseline(sim.base_url, sim.token, images, prompts, root / "baseline-out",
                            settings)


def run_real(c: RealConfig) -> Outcome:
    with tempfile.TemporaryDirectory(prefix=f"bench-{c.name.lower()}-") as tmp:
        root = Path(tmp)
        images = [small_image(root / "training" / f"{i:03d}.png", i) for i in range(c.images)]
        pipeline = write_pipeline(root, text_scenes(c.scenes), concurrency=None)
        found: dict[str, BaselineResult] = {}
        beside = threading.Thread(target=lambda: found.update(b=_baseline(root, images, c)))
        beside.start()
        result, stats, again, again_stats = _bria_run(root, pipeline, c)
        beside.join()
    first = _outcome(c, result, stats, found["b"])
    second = _again(c, again, again_stats)
    return Outcome(first.rows + second.rows, first.details + second.details)


def _outcome(c: RealConfig, result: WorkerResult, stats: dict[str, Any],
             base: BaselineResult) -> Outcome:
    data = result.data
    makespan = data["ended"] - data["began"]
    bound, how = floor(c)
    polls = stats["calls"].get(STATUS, 0)
    per_image = polls / c.scenes
    peaks = data.get("peaks", {})
    notes = (f"{c.images} images, {c.scenes} scenes, rpm {c.rpm}, jobs "
             f"{c.generation:g}-{c.generation + c.spread:g} s, defaults (concurrency auto: at "
             f"most {peaks.get('upload', '?')} uploads, {peaks.get('scene', '?')} jobs at once); "
             f"429s {stats['rate_limited']} (baseline {base.rate_limited}); "
             f"{per_image:.2f} status polls per image")
    marks = data["marks"]
    details = (
        f"{c.name}: {how}; times x{c.scale:g} of Bria's (window {c.window:g} s).",
        (f"{c.name}: bria-run's uploads ended at {marks['last_done:upload'] - data['began']:.2f}"
         f" s, training at {marks['last_done:train'] - data['began']:.2f} s, the last image at "
         f"{makespan:.2f} s; {polls} status polls for {c.scenes} jobs; runner CPU "
         f"{data['cpu_engine']:.2f} s."),
    )
    efficiency = bound / makespan
    row = Row(f"{c.name} defaults at Bria's latencies, rpm {c.rpm}", makespan, "s",
              baseline=base.seconds, floor=bound,
              goal="efficiency >= 0.9, no 429, ~1 poll per image",
              met=efficiency >= 0.9 and stats["rate_limited"] == 0 and per_image <= 1.3,
              notes=notes)
    return Outcome((row,), details)


def run_s6(is_smoke: bool) -> Outcome:
    return run_real(smoke(S6) if is_smoke else S6)


def run_s7(is_smoke: bool) -> Outcome:
    return run_real(smoke(S7) if is_smoke else S7)



def _again(c: RealConfig, result: WorkerResult, stats: dict[str, Any]) -> Outcome:
    data = result.data
    makespan = data["ended"] - data["began"]
    bound = again_floor(c)
    per_image = stats["calls"].get(STATUS, 0) / c.scenes
    row = Row(f"{c.name} again: {c.scenes} new scenes, same state", makespan, "s", floor=bound,
              goal="efficiency >= 0.9, no 429, ~1 poll per image",
              met=bound / makespan >= 0.9 and stats["rate_limited"] == 0 and per_image <= 1.3,
              notes=(f"the durations the first run recorded start the pacer (no probe); "
                     f"429s {stats['rate_limited']}; {per_image:.2f} status polls per image"))
    detail = (f"{c.name} again: floor = submit {c.t(c.submit):.2f} + the longest drawn job "
              f"{max(c.durations(c.scenes)):.2f} + one status poll {c.t(c.status):.2f} s; "
              f"after a window's pause, in the first run's simulator and state.")
    return Outcome((row,), (detail,))
