"""Where an S6/S7 run's time goes: bria-run alone (no baseline beside it), every request's
send and answer times and every step's events, as a timeline from the engine's start.

    python -m tests.benchmarks.trace [S6|S7] [--smoke]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.benchmarks.child import run_worker
from tests.benchmarks.fixtures import small_image, text_scenes, write_pipeline
from tests.benchmarks.realistic import S6, S7, floor, smoke
from tests.benchmarks.simproc import SimProcess


def main(argv: list[str]) -> int:
    c = S7 if "S7" in argv else S6
    c = smoke(c) if "--smoke" in argv else c
    with tempfile.TemporaryDirectory(prefix="bench-trace-") as tmp:
        root = Path(tmp)
        for i in range(c.images):
            small_image(root / "training" / f"{i:03d}.png", i)
        pipeline = write_pipeline(root, text_scenes(c.scenes), concurrency=None)
        with SimProcess(c.sim_settings()) as sim:
            job = {"pipeline": str(pipeline), "state": str(root / "state.sqlite"),
                   "base_url": sim.base_url, "rpm": c.rpm, "window": c.window,
                   "job_poll": c.t(c.job_poll), "poll_every": c.t(c.training_poll),
                   "trace": True}
            data = run_worker(job, sim.token).data
    began = data["began"]
    bound, how = floor(c)
    makespan = data["ended"] - began
    print(f"{c.name}: {makespan:.2f} s, floor {bound:.2f} s, efficiency {bound / makespan:.3f}")
    print(how)
    lines = [(sent, (f"{sent - began:7.3f} {answered - began:7.3f} {answered - sent:6.3f} "
                     f"{method} {path if '/status/' not in path else '/v2/status/*'} {code}"))
             for sent, answered, method, path, code in data["trace"]]
    lines += [(at, f"{at - began:7.3f} {'':7} {'':6} {event} {key} {state}")
              for at, event, key, state in data["events"] if event in ("step", "scene")]
    for _at, line in sorted(lines):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
