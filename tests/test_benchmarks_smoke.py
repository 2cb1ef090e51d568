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


@pytest.fixture(scope="module")
def smoke_run() -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIA_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "tests.benchmarks", "--smoke"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_smoke_run_exits_zero(smoke_run: subprocess.CompletedProcess[str]) -> None:
    assert smoke_run.returncode == 0, smoke_run.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("row", SCENARIO_ROWS.values(), ids=SCENARIO_ROWS.keys())
def test_smoke_table_has_every_scenario(smoke_run: subprocess.CompletedProcess[str],
                                        row: str) -> None:
    table = [line for line in smoke_run.stdout.splitlines() if line.startswith(row)]
    assert table, f"no row {row!r} in:\n{smoke_run.stdout}"

