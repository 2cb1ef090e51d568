"""The simulator as a separate process, configured for one scenario."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from types import TracebackType
from typing import Any, Self

import httpx

# No limit, no latency, instant training and generation, tiny results: only bria-run's cost.
INSTANT: dict[str, Any] = {"rpm": None, "latency": 0.0, "latency_by_endpoint": {},
                           "training_seconds": 0.0, "generation_seconds": 0.0,
                           "result_size": 64}


class SimProcess:
    """``python -m runner simulate --port 0`` on loopback, then ``POST /__sim/config``.

    Use as a context manager; the process is stopped (SIGTERM, then SIGKILL) on exit.
    ``token`` is a fresh random one: only the benchmark's children receive it (by env).
    """

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.token = secrets.token_hex(12)
        self.base_url = ""
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Self:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "runner", "simulate", "--port", "0", "--rpm", "0",
             "--token", self.token],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},  # the URL line must not wait in a buffer
        )
        self.base_url = self._read_url(self._proc)
        self.configure(self.settings)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()

    @staticmethod
    def _read_url(proc: subprocess.Popen[str]) -> str:
        assert proc.stdout is not None
        for line in proc.stdout:  # the simulator prints its two export lines at once
            if line.startswith("export BRIA_API_URL="):
                return line.split("=", 1)[1].strip()
        raise RuntimeError(f"the simulator did not start (exit {proc.poll()})")

    def configure(self, changes: dict[str, Any]) -> None:
        answer = httpx.post(f"{self.base_url}/__sim/config", json=changes, timeout=10)
        answer.raise_for_status()

    def stats(self) -> dict[str, Any]:
        found: dict[str, Any] = httpx.get(f"{self.base_url}/__sim/stats", timeout=10).json()
        return found
