"""Cold-start timings of `bria-run validate pipelines/luna.yaml` and `bria-run --help`.

Each command runs in a fresh interpreter (subprocess), several times; `python -c pass`
is the same-run baseline. Prints figures; asserts nothing.

    python tests/benchmarks/bench_validate.py [RUNS]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "bria-run --help": [sys.executable, "-m", "runner", "--help"],
    "bria-run validate pipelines/luna.yaml": [sys.executable, "-m", "runner", "validate",
                                              "pipelines/luna.yaml"],
}


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, capture_output=True)
    return time.perf_counter() - start


def main(runs: int) -> None:
    print(f"{runs} runs each, wall seconds (median / min / max)")
    for name, command in COMMANDS.items():
        timed(command)  # warm the OS file cache once, as a second run of a user's would
        samples = [timed(command) for _ in range(runs)]
        print(f"  {name:40s} {statistics.median(samples):.3f} / {min(samples):.3f} / "
              f"{max(samples):.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
