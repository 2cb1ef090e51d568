"""Peak memory of one command in a fresh process.

    python -m tests.benchmarks.peak MODULE [ARGS...]     # run MODULE as __main__
    python -m tests.benchmarks.peak --code 'PYTHON'      # or run this code

The child runs the command, then prints one JSON line on stderr, last:
``{"maxrss_mb": ..., "code": ...}`` (the child's own peak RSS, VmHWM, so nothing the
parent holds is counted). ``peak_mb`` spawns it and reads that line.
"""

from __future__ import annotations

import json
import os
import resource
import runpy
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def peak_mb(args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 300.0) -> tuple[float, int, str]:
    """Peak RSS in MB of ``python -m tests.benchmarks.peak ARGS``, its exit code and stderr
    (without the figures line)."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("BRIA_")}
    child_env.update(env or {})
    child_env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-m", "tests.benchmarks.peak", *args],
                          cwd=cwd or REPO, env=child_env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    lines = done.stderr.strip().splitlines()
    figures = json.loads(lines[-1])
    return float(figures["maxrss_mb"]), int(figures["code"]), "\n".join(lines[:-1])


def _main(argv: list[str]) -> int:
    code = 0
    try:
        if argv[0] == "--code":
            exec(compile(argv[1], "<peak>", "exec"), {"__name__": "__main__"})  # noqa: S102
        else:
            sys.argv = argv
            runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    sys.stdout.flush()
    print(json.dumps({"maxrss_mb": round(_peak_self(), 1), "code": code}), file=sys.stderr)
    return 0


def _peak_self() -> float:
    """VmHWM, this process's own high-water mark: unlike ru_maxrss it starts afresh at exec,
    so a big parent that forked us is not counted."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
