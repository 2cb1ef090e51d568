"""The benchmark command keeps working: its smoke run prints every scenario's row.

No timing is asserted: figures depend on the machine; this only proves the benchmark
still runs end to end (simulators started, workers spawned, table printed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCENARIO_ROWS = {
    "S1": "S1 rate-limited makespan",
    "S2": "S2 engine CPU per step, in-process Bria",
    "S2-http": "S2 CPU per step over loopback HTTP",
    "S3-plan": "S3 resume: start to plan",
    "S3-request": "S3 resume: start to first request",
    "S3-unchanged": "S3 resume, unchanged 2,500-scene file: start to plan",
    "S3-history": "S3 resume, long history of a 10-scene file: start to plan",
    "S4": "S4 peak RSS",
    "S5-help": "S5 bria-run --help",
    "S5-validate": "S5 bria-run validate",
    "S6": "S6 defaults at Bria's latencies, rpm 60",
    "S7": "S7 defaults at Bria's latencies, rpm 1000",
    "S6-again": "S6 again: 3 new scenes, same state",
    "G1-write": "G1 gallery of 40 images: page + thumbnails",
    "G1-again": "G1 gallery of 40 images: page again, thumbnails reused",
    "G1-bytes": "G1 gallery first open: bytes transferred",
    "G1-open": "G1 gallery first open: navigation to load event",
    "B1-webp": "B1 validate peak RSS, 1200 px WEBP",
    "P1-three": "P1 three pipelines, three runners, one budget in PostgreSQL",
    "P1-step": "P1 state cost per step, PostgreSQL",
    "P1-budget": "P1 budget cost per request, PostgreSQL",
    "B2-answer": "B2 run peak RSS, 16 MB answer",
    "B2-endless": "B2 run peak RSS, endless download",
    "W1": "W1 5xx storm 20%",
}


def _scenario_of(key: str) -> str:
    return key.split("-", 1)[0]


SCENARIOS = sorted({_scenario_of(key) for key in SCENARIO_ROWS})


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_smoke_run_prints_every_row_of_its_scenario(scenario: str) -> None:
    """One subprocess per scenario (``--smoke --only NAME``), so the suite can run them side by
    side; together they cover the whole table."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIA_")}
    env["PYTHONPATH"] = str(REPO)
    run = subprocess.run([sys.executable, "-m", "tests.benchmarks", "--smoke", "--only", scenario],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
                         check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    for key, row in SCENARIO_ROWS.items():
        if _scenario_of(key) == scenario:
            assert any(line.startswith(row) for line in lines), f"no row {row!r} in:\n{run.stdout}"


def test_every_benchmark_scenario_has_its_rows_listed() -> None:
    """A scenario added to the benchmark command is smoke-tested too (its rows listed here)."""
    from tests.benchmarks.__main__ import SCENARIOS as known
    assert sorted(known) == SCENARIOS
