"""S5: cold start of `bria-run --help` and `bria-run validate` (bench_validate's commands)."""

from __future__ import annotations

import statistics

from tests.benchmarks.bench_validate import COMMANDS, timed
from tests.benchmarks.table import Outcome, Row

GOAL = 0.5


def run_s5(smoke: bool) -> Outcome:
    runs = 1 if smoke else 7
    medians: dict[str, float] = {}
    for name, command in COMMANDS.items():
        timed(command)  # warm the OS file cache once, as a user's second run would be
        medians[name] = statistics.median(timed(command) for _ in range(runs))
    python = medians.pop("python -c pass")
    rows = tuple(
        Row(f"S5 {name}", seconds, "s", goal=f"< {GOAL:g} s", met=seconds < GOAL,
            notes=f"median of {runs} fresh processes; `python -c pass` {python:.3f} s")
        for name, seconds in medians.items()
    )
    return Outcome(rows)
