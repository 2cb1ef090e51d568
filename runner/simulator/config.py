"""The simulator's settings: timings, limits and faults, changeable while it runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass
class SimConfig:
    """How the simulated Bria behaves. Mutable on purpose: ``Simulator.configure`` changes
    faults and timings while it serves (a training or job already started keeps the
    timing and outcome it started with)."""

    token: str = field(default="sim-token", repr=False)
    rpm: int | None = None  # per endpoint per window; None = unlimited
    rate_window: float = 60.0  # seconds; benchmarks scale it down
    latency: float = 0.0  # seconds added to every API request
    latency_by_endpoint: dict[str, float] = field(default_factory=dict)
    training_seconds: float = 3600.0  # Created -> InProgress -> Completed over this time
    generation_seconds: float = 2.0  # v2 job IN_PROGRESS -> COMPLETED; legacy links 404 until then
    # Each job takes generation_seconds plus a share of this, drawn from ``seed`` and the job's
    # number: the n-th job of every run with the same settings takes the same time.
    generation_spread: float = 0.0
    link_ttl: float = 3600.0  # result links answer 403 this long after they became ready
    job_ttl: float = 86400.0  # /v2/status answers 404 NOT_FOUND this long after completion
    # Faults, drawn per request (runner/simulator/faults.py says where each falls):
    fail_rate: float = 0.0  # fraction of API requests answered 500/502/503 (before the work), 504
    lost_answer_rate: float = 0.0  # fraction of POSTs processed, then the connection dropped
    drop_rate: float = 0.0  # fraction of requests whose connection drops
    drop_before: float = 0.5  # share of the drops as the request arrives (else mid-answer)
    storm_rate: float = 0.0  # fraction of requests answered 429 with Retry-After
    refuse_rate: float = 0.0  # fraction of requests after which new connections are refused
    refuse_seconds: float = 0.2  # for this long
    fail_training: bool = False  # trainings started from now on end Failed
    cold_start: float = 0.0  # extra delay for a model's first generation job
    moderation_words: tuple[str, ...] = ("forbidden",)  # in a prompt -> 422 moderation
    error_words: tuple[str, ...] = ("sim-error",)  # in a prompt -> the job ends ERROR
    unknown_words: tuple[str, ...] = ("sim-unknown",)  # in a prompt -> the job ends UNKNOWN
    result_size: int = 1024  # long side of generated images
    seed: int = 0  # for fault randomness
    retire_legacy: bool = False  # legacy routes answer as retired endpoints (retired.py)
    record_requests: bool = False  # keep every request body (long strings shortened)
    persist_path: Path | None = None  # load the world at start, save after each mutation
    # Test-only faults that attack the client's bounds (runner/simulator/hostile.py); no real
    # Bria does this, tests and benchmarks turn them on to prove bria-run's limits hold.
    huge_answer: int = 0  # bytes: GET /v2/status answers a JSON document this large
    result_fault: str = ""  # "endless": result links stream bytes forever; "html": a web page
    result_host: str = ""  # result links in job answers name this host (e.g. 169.254.169.254)
    echo_token: bool = False  # job error messages repeat the api_token they were sent
    clock: Callable[[], float] = time.time

    def update(self, changes: dict[str, Any]) -> None:
        """Apply changes by name (JSON values are coerced: lists to tuples, paths)."""
        known = {f.name: f for f in fields(self)}
        for name, value in changes.items():
            if name not in known or name == "clock":
                raise ValueError(f"unknown simulator setting: {name}")
            current = getattr(self, name)
            if isinstance(current, tuple) and isinstance(value, list):
                value = tuple(value)
            if name == "persist_path" and value is not None:
                value = Path(value)
            setattr(self, name, value)

    def public(self) -> dict[str, Any]:
        """The settings as JSON, without the token or the clock."""
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown.pop("token")
        shown.pop("clock")
        shown["persist_path"] = str(self.persist_path) if self.persist_path else None
        shown["moderation_words"] = list(self.moderation_words)
        shown["error_words"] = list(self.error_words)
        shown["unknown_words"] = list(self.unknown_words)
        return shown
