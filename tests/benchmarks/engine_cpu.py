"""S2: the engine's own cost per step.

Two figures: the engine alone against an in-process Bria that answers at once (planning,
checkpoints, bookkeeping, output files: what the goal is about), and the same run end to
end over loopback HTTP against an instant, unlimited simulator in another process (the
HTTP client's own cost included).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tests.benchmarks.child import run_worker
from tests.benchmarks.fixtures import small_image, text_scenes, write_pipeline
from tests.benchmarks.simproc import INSTANT, SimProcess
from tests.benchmarks.table import Outcome, Row


def engine_only(root: Path, pipeline_path: Path) -> tuple[float, int]:
    """CPU seconds of Engine.run against FakeBria, and the steps it ran."""
    from runner.display.reporters import QuietReporter
    from runner.engine.context import Context, RunOptions
    from runner.engine.executor import Engine
    from runner.engine.plan import plan
    from runner.pipeline.loader import load_pipeline
    from runner.state.rows import ApiIdentity
    from runner.state.store import Store
    from tests.benchmarks.fakebria import FakeBria

    pipeline, _ = load_pipeline(pipeline_path)
    with Store.open(root / "engine-only.sqlite", ApiIdentity("real", "in-process")) as store:
        hashes = dict(pipeline.image_hashes)
        the_plan = plan(pipeline, store.load(), hashes)
        ctx = Context(pipeline, the_plan, store, FakeBria(), QuietReporter(),  # type: ignore[arg-type]
                      RunOptions(job_poll=0.0, poll_every=0.0), hashes=hashes,
                      pause=lambda _s: None)
        cpu = time.process_time()
        Engine(ctx).run()
        return time.process_time() - cpu, sum(1 for s in the_plan.steps if s.is_work)


def run_s2(smoke: bool) -> Outcome:
    scenes = 40 if smoke else 2000
    with tempfile.TemporaryDirectory(prefix="bench-s2-") as tmp, SimProcess(INSTANT) as sim:
        root = Path(tmp)
        for i in range(5):
            small_image(root / "training" / f"{i}.png", i)
        pipeline = write_pipeline(root, text_scenes(scenes), concurrency=4)
        job = {"pipeline": str(pipeline), "state": str(root / "state.sqlite"),
               "base_url": sim.base_url, "rpm": None, "job_poll": 0.05, "poll_every": 0.05}
        data = run_worker(job, sim.token).data
        engine_cpu, engine_steps = engine_only(root, pipeline)
    steps = int(data["steps"])
    per_step = data["cpu_engine"] / steps * 1000
    alone = engine_cpu / engine_steps * 1000
    wall = data["ended"] - data["began"]
    notes = (f"{steps} steps ({scenes} scenes + training chain), concurrency 4; engine CPU "
             f"{data['cpu_engine']:.2f} s in {wall:.1f} s wall; load+plan CPU "
             f"{data['cpu_plan'] * 1000:.0f} ms")
    row = Row("S2 engine CPU per step, in-process Bria", alone, "ms", goal="< 1 ms",
              met=alone < 1.0, notes=f"{engine_steps} steps, concurrency 4; checkpoints, "
              "bookkeeping and atomic output files (fsync) included, no HTTP")
    http_row = Row("S2 CPU per step over loopback HTTP", per_step, "ms", notes=notes)
    detail = ("S2: runner CPU is time.process_time() of the worker process around Engine.run "
              "(state commits, HTTP client, JSON, downloads of 64 px results included); the "
              "simulator runs in its own process.")
    return Outcome((row, http_row), (detail,))
