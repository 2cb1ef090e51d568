"""W1: heavier weather than the fault-storm suite (tests/test_weather.py) can afford in CI.

Each level runs bria-run against a fresh simulator until it finishes (at most 4 runs; a second
run is only ever needed for a scene whose paid POST lost its answer twice in one run: a drop
after the request was sent, or a gateway's 502/504) and reports the runs,
the duplicate generations and credits from ``/__sim/stats``, the 429s the simulator's own
limit answered (provoked), and the wall time. Client timings are shortened as in the suite.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from runner.simulator import SimConfig, Simulator
from tests.benchmarks.table import Outcome, Row
from tests.simrun import TOKEN, bria, env_for, sim_stats, write_pipeline

RPM = 120
GENERATE = "POST /v2/image/generate/tailored"
QUICK = {"BRIA_RUN_READ_TIMEOUT": "1", "BRIA_RUN_CREATE_TIMEOUT": "5",
         "BRIA_RUN_RETRY_BASE": "0.1"}
LEVELS: dict[str, dict[str, Any]] = {
    "5xx storm 60%": {"fail_rate": 0.6, "seed": 11},
    "429 storm 60%": {"storm_rate": 0.6, "seed": 12},
    "dropped connections 50%": {"drop_rate": 0.5, "seed": 13},
    "refused connections 50%": {"refuse_rate": 0.5, "seed": 15},
    "all four at 20%": {"fail_rate": 0.2, "storm_rate": 0.2, "drop_rate": 0.2,
                        "refuse_rate": 0.2, "seed": 14},
}
SMOKE = {"5xx storm 20%": {"fail_rate": 0.2, "seed": 3}}
RUNS = 4


def run_level(name: str, settings: dict[str, Any]) -> Row:
    config = SimConfig(token=TOKEN, training_seconds=1.0, generation_seconds=0.2, rpm=RPM,
                       **settings)
    with tempfile.TemporaryDirectory(prefix="bria-w1-") as tmp, Simulator(config) as sim:
        path = write_pipeline(Path(tmp))
        env, began, codes = env_for(sim.base_url, **QUICK), time.monotonic(), []
        for _ in range(RUNS):
            result = bria(["run", str(path), "-q", "--rpm", str(RPM), "--outage-tolerance",
                           "5m"], env=env, cwd=Path(tmp), timeout=600)
            codes.append(result.returncode)
            if result.returncode == 0:
                break
        took, stats = time.monotonic() - began, sim_stats(sim.base_url)
    dups = stats["duplicates"]
    others = dups["projects"] + dups["datasets"] + dups["images"] + dups["models"]
    notes = (f"runs {len(codes)} (exits {codes}), duplicate generations {dups['generations']}, "
             f"other duplicates {others}, credits {stats['credits']}, "
             f"provoked 429s {stats['rate_limited']}, faults {sum(stats['faults'].values())}, "
             f"on generations {stats['fault_routes'].get(GENERATE, {})}")
    return Row(f"W1 {name}", took, "s", goal="finished, 0 other duplicates",
               met=codes[-1] == 0 and others == 0, notes=notes)


def run_w1(smoke: bool) -> Outcome:
    rows = tuple(run_level(name, settings)
                 for name, settings in (SMOKE if smoke else LEVELS).items())
    return Outcome(rows, ("W1: 5 training images, 3 images; a calm run spends 89 credits",))
