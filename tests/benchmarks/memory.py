"""S4: bria-run's peak memory for 50 and for 200 training images of about 8 MB each."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tests.benchmarks.child import run_worker
from tests.benchmarks.fixtures import noise_pngs, text_scenes, write_pipeline
from tests.benchmarks.simproc import INSTANT, SimProcess
from tests.benchmarks.table import Outcome, Row

GOAL_MB = 150.0
SAMPLES = 6  # the default: bria-run sends identity samples scaled to 1024 px


def _peak(root: Path, images: list[Path]) -> float:
    """ru_maxrss of a worker that trains on ``images`` and makes one picture."""
    folder = root / f"run{len(images)}"
    (folder / "training").mkdir(parents=True)
    for image in images:  # hard links: the same bytes, no extra disk or time
        os.link(image, folder / "training" / image.name)
    pipeline = write_pipeline(folder, text_scenes(1), concurrency=4,
                              samples=min(SAMPLES, len(images)))
    with SimProcess(INSTANT) as sim:
        job = {"pipeline": str(pipeline), "state": str(folder / "state.sqlite"),
               "base_url": sim.base_url, "rpm": None, "job_poll": 0.05, "poll_every": 0.05}
        return float(run_worker(job, sim.token, timeout=600).data["maxrss_mb"])


def run_s4(smoke: bool) -> Outcome:
    small, large, megabytes = (5, 10, 0.5) if smoke else (50, 200, 8.0)
    with tempfile.TemporaryDirectory(prefix="bench-s4-") as tmp:
        images = noise_pngs(Path(tmp) / "images", large, megabytes)
        peaks = {n: _peak(Path(tmp), images[:n]) for n in (small, large)}
    growth = peaks[large] - peaks[small]
    rows = tuple(
        Row(f"S4 peak RSS, {n} images of {megabytes:g} MB", mb, "MB", goal=f"< {GOAL_MB:g} MB",
            met=mb < GOAL_MB, notes=f"{large} vs {small} images: {growth:+.1f} MB"
            if n == large else "load, hash, plan, uploads, training, one image")
        for n, mb in peaks.items()
    )
    detail = (f"S4: ru_maxrss of the worker process (the simulator decodes the uploads in its "
              f"own process); concurrency 4, identity_samples {SAMPLES} (sent scaled to "
              f"1024 px). Upload bodies stream from the file in 192 KB chunks; validation reads "
              f"one file at a time (at most 12 MB) and checks PNGs without decoding pixels; "
              f"hashes stream 1 MB at a time.")
    return Outcome(rows, (detail,))
