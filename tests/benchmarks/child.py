"""Spawning the worker and reading its answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


class WorkerFailed(RuntimeError):
    def __init__(self, code: int, stderr: str) -> None:
        self.code, self.stderr = code, stderr
        super().__init__(f"benchmark worker exited {code}: {stderr.strip()[-2000:]}")


@dataclass(frozen=True)
class WorkerResult:
    spawned: float  # time.time() just before the process was started
    data: dict[str, Any]

    def since_spawn(self, stamp: str) -> float:
        return float(self.data[stamp]) - self.spawned


def run_worker(job: dict[str, Any], token: str, *, timeout: float = 240.0) -> WorkerResult:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIA_")}
    env.update(BENCH_API_TOKEN=token, PYTHONPATH=str(REPO))
    spawned = time.time()
    done = subprocess.run([sys.executable, "-m", "tests.benchmarks.worker", json.dumps(job)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    if done.returncode != 0:
        raise WorkerFailed(done.returncode, done.stderr)
    return WorkerResult(spawned, json.loads(done.stdout.strip().splitlines()[-1]))
