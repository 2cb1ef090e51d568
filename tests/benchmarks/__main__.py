"""``python -m tests.benchmarks [--smoke] [--only S1 ...]``: run, print one table, save it.

A full run writes the table as markdown to ``tests/benchmarks/latest.md`` (for the
README's Performance section); ``--smoke`` runs a seconds-long tiny version of every
scenario and writes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.benchmarks.bounded import run_b2
from tests.benchmarks.engine_cpu import run_s2
from tests.benchmarks.gallery import run_g1
from tests.benchmarks.hostile import run_b1
from tests.benchmarks.memory import run_s4
from tests.benchmarks.rate import run_s1
from tests.benchmarks.realistic import run_s6, run_s7
from tests.benchmarks.resume import run_s3
from tests.benchmarks.startup import run_s5
from tests.benchmarks.studio import run_p1
from tests.benchmarks.table import Outcome, machine, render_markdown, render_text
from tests.benchmarks.weather import run_w1

SCENARIOS: dict[str, Callable[[bool], Outcome]] = {
    "S1": run_s1, "S2": run_s2, "S3": run_s3, "S4": run_s4, "S5": run_s5, "S6": run_s6,
    "S7": run_s7, "G1": run_g1, "B1": run_b1, "B2": run_b2, "P1": run_p1, "W1": run_w1,
}
LATEST = Path(__file__).with_name("latest.md")
COMMAND = "python -m tests.benchmarks"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a tiny, seconds-long run")
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), default=None,
                        help="run only this scenario (repeatable)")
    return parser.parse_args(argv)


def with_bytecode() -> str:
    """Child processes import bria-run from bytecode, as an installed one does: an environment
    with PYTHONDONTWRITEBYTECODE set would have every fresh process compile the project's
    modules again (0.15-0.2 s on this machine, inside S3's and S5's figures). The bytecode goes
    to a folder of its own under the system's temp directory, never into the checkout."""
    if not os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
        return ""
    os.environ.setdefault("PYTHONPYCACHEPREFIX",
                          str(Path(tempfile.gettempdir()) / "bria-run-bench-pycache"))
    return " Bytecode: cached (PYTHONDONTWRITEBYTECODE unset for the children)."


def main(argv: list[str]) -> int:
    args = parse(argv)
    chosen = args.only or list(SCENARIOS)
    bytecode = with_bytecode()
    began = time.monotonic()
    outcomes: list[Outcome] = []
    for name in chosen:
        print(f"running {name}...", file=sys.stderr, flush=True)
        outcomes.append(SCENARIOS[name](args.smoke))
    rows = [row for o in outcomes for row in o.rows]
    details = [line for o in outcomes for line in o.details]
    took = time.monotonic() - began
    header = f"Machine: {machine()}. Whole run: {took:.0f} s.{bytecode}"
    print(header)
    print(render_text(rows))
    print("\n".join(details))
    if not args.smoke and args.only is None:
        LATEST.write_text(f"{header}\nReproduce: `{COMMAND}`\n\n{render_markdown(rows)}\n\n"
                          + "".join(f"- {line}\n" for line in details))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
