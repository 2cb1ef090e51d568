"""P1: a studio on PostgreSQL (the server at 127.0.0.1:5432, else one from pgserver).

- Three runner processes on three pipelines at once, sharing the organisation's budget in the
  database, against the floor: the longer of one pipeline alone (its own critical path, under
  the same budget) and the budget's own bound for the three together (the busiest endpoint's
  requests at ``rpm`` per window). Beside it, the same three with SQLite states: each process
  believes it owns the whole budget, so the server answers 429s.
- The state's cost per step (begin, intent, answer, finish with its output), SQLite vs
  PostgreSQL, with a lease held (so every write is fenced).
- The budget's own cost per request: a slot taken and given back, in memory vs PostgreSQL.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from runner.budgets import Budgets
from runner.simulator import SimConfig, Simulator
from runner.state.lock import RunLock
from runner.state.rows import ApiIdentity, IntentOutcome, PipelineKey
from runner.state.store import Store
from tests.benchmarks.fixtures import small_image, text_scenes, write_pipeline
from tests.benchmarks.table import Outcome, Row
from tests.pg import start_server

REPO = Path(__file__).resolve().parents[2]
TOKEN = "bench-token"


def _pipelines(folder: Path, count: int, images: int, scenes: int) -> list[Path]:
    paths = []
    for n in range(count):
        home = folder / f"p{n}"
        for i in range(images):
            small_image(home / "training" / f"{i:02d}.png", i + 100 * n)
        paths.append(write_pipeline(home, text_scenes(scenes, prefix=f"s{n}_"), name=f"p{n}",
                                    concurrency=4))
    return paths


def _run_all(paths: list[Path], base_url: str, rpm: int, window: float,
             state: str | None, *, one_process: bool = False) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIA_")}
    env.update(BRIA_API_URL=base_url, BRIA_API_TOKEN=TOKEN, BRIA_RUN_RPM=str(rpm),
               BRIA_RUN_RATE_WINDOW=str(window), BRIA_RUN_JOB_POLL="0.1", PYTHONPATH=str(REPO))
    if state:
        env["BRIA_RUN_STATE"] = state
    began = time.monotonic()
    commands = [[str(p) for p in paths]] if one_process else [[str(p)] for p in paths]
    runners = [subprocess.Popen([sys.executable, "-m", "runner", "run", *files, "-q"], env=env,
                                cwd=paths[0].parent, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True) for files in commands]
    errors = [r.communicate(timeout=600)[1] for r in runners]
    took = time.monotonic() - began
    if any(r.returncode for r in runners):
        raise RuntimeError(f"a runner failed: {errors}")
    return took


def _simulator(rpm: int, window: float) -> Simulator:
    return Simulator(SimConfig(token=TOKEN, rpm=rpm, rate_window=window, training_seconds=1.0,
                               generation_seconds=0.3, latency=0.01)).start()


def _three_at_once(folder: Path, server: Any, smoke: bool) -> tuple[Row, list[str]]:
    rpm, window = (4, 0.5) if smoke else (6, 1.0)
    images, scenes = (5, 2) if smoke else (10, 8)
    results: dict[str, Any] = {}
    for label, count, shared in (("alone", 1, True), ("shared", 3, True), ("sqlite", 3, False),
                                 ("together", 3, False)):
        state = server.create_database() if shared else None
        paths = _pipelines(folder / label, count, images, scenes)
        sim = _simulator(rpm, window)
        try:
            took = _run_all(paths, sim.base_url, rpm, window, state,
                            one_process=label == "together")
            stats = httpx.get(f"{sim.base_url}/__sim/stats", timeout=10).json()
        finally:
            sim.stop()
        results[label] = (took, stats)
    took, stats = results["shared"]
    busiest = max(stats["calls"].values())
    budget_floor = (math.ceil(busiest / rpm) - 1) * window
    floor = max(results["alone"][0], budget_floor)
    sqlite_took, sqlite_stats = results["sqlite"]
    together, together_stats = results["together"]
    row = Row("P1 three pipelines, three runners, one budget in PostgreSQL", took, "s",
              baseline=together, floor=floor, goal="no 429", met=stats["rate_limited"] == 0,
              notes=f"{images} images + {scenes} scenes each, rpm {rpm} per {window:g} s; "
                    f"429s {stats['rate_limited']}; with SQLite states (a budget per process) "
                    f"{sqlite_took:.1f} s and {sqlite_stats['rate_limited']} 429s")
    details = [(f"P1: floor = max(one pipeline alone under the same budget "
                f"{results['alone'][0]:.2f} s, the budget's bound for the three "
                f"{budget_floor:.2f} s: busiest endpoint {busiest} requests at {rpm} per "
                f"{window:g} s); runner start-up (about 0.5 s a process) is inside both."),
               (f"P1: baseline = the same three pipelines in ONE process, sharing its in-memory "
                f"budget: {together:.2f} s, {together_stats['rate_limited']} 429s; three "
                f"processes also pay three start-ups and share two cores.")]
    return row, details


def _steps(store: Store, count: int) -> float:
    began = time.perf_counter()
    for n in range(count):
        step = store.begin_step(f"scene/s{n}/1", "scene", "fp", is_new=True)
        intent = store.record_intent(step.id, "generate")
        store.resolve_intent(intent, IntentOutcome.LANDED, remote_id=f"r{n}")
        store.finish_step(step.id, remote_id=f"r{n}", outputs={"path": f"/o/{n}.png"},
                          artifact={"scene": f"s{n}", "variation": 1, "path": f"/o/{n}.png",
                                    "sha256": "0" * 64, "seed": n, "source": None,
                                    "bytes": 1})
    return (time.perf_counter() - began) / count


def _per_step(folder: Path, server: Any, smoke: bool) -> list[Row]:
    count = 20 if smoke else 300
    api, key = ApiIdentity("simulated", "bench"), PipelineKey("bench", "bench.yaml")
    rows = []
    for label, where in (("SQLite", str(folder / "bench.sqlite")),
                         ("PostgreSQL", server.create_database())):
        with Store.open(where, api, pipeline=key) as store, RunLock(store, "bench"):
            cost = _steps(store, count)
        rows.append(Row(f"P1 state cost per step, {label}", cost * 1000, "ms",
                        notes=f"{count} steps: begin, intent, answer, finish with its output "
                              f"(5 transactions), every write fenced by the lease"))
    return rows


def _budget_overhead(server: Any, smoke: bool) -> list[Row]:
    count = 50 if smoke else 1000
    rows = []
    for label, state in (("in memory", None), ("PostgreSQL", server.create_database())):
        budgets = Budgets(state, rpm=1_000_000, window=0.05)  # counted, never binding
        budget = budgets.for_api("http://bench", TOKEN)
        began = time.perf_counter()
        for _ in range(count):
            budget.acquire("GET /v2/status/{id}")
            budget.release("GET /v2/status/{id}")
        cost = (time.perf_counter() - began) / count
        budgets.close()
        rows.append(Row(f"P1 budget cost per request, {label}", cost * 1000, "ms",
                        notes=f"{count} slots taken and given back, nothing waiting"))
    return rows


def run_p1(smoke: bool) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="bench-p1-") as tmp:
        folder = Path(tmp)
        server = start_server(folder / "pgdata")
        try:
            three, details = _three_at_once(folder, server, smoke)
            rows = [three, *_per_step(folder, server, smoke), *_budget_overhead(server, smoke)]
        finally:
            server.drop_all()
    return Outcome(tuple(rows), tuple(details))
