"""A studio on a real PostgreSQL server: runner processes on several pipelines share one
request budget; a runner killed mid-generation is taken over from another host after its
lease lapses; the studio view lists them all."""

from __future__ import annotations

import json
import math
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from simrun import TOKEN, bria, env_for, sim_stats, spawn, write_pipeline

from runner.simulator import SimConfig, Simulator

pytestmark = pytest.mark.slow

RPM, WINDOW = 4, 1.0  # Bria's minute, compressed: 4 requests per second per endpoint
SCENES = [{"name": "forest", "prompt": "Luna in a forest"},
          {"name": "reading", "prompt": "Luna reading by the fire", "variations": 2}]


def simulator() -> Simulator:
    return Simulator(SimConfig(token=TOKEN, training_seconds=1.0, generation_seconds=0.2,
                               rpm=RPM, rate_window=WINDOW)).start()


def studio_env(base_url: str, pg_url: str, **extra: str) -> dict[str, str]:
    return env_for(base_url, BRIA_RUN_STATE=pg_url, BRIA_RUN_RPM=str(RPM),
                   BRIA_RUN_RATE_WINDOW=str(WINDOW), **extra)


def floor_seconds(stats: dict[str, Any]) -> float:
    """The least time the budget allows: the busiest endpoint's requests, RPM per window."""
    busiest = max(stats["calls"].values())
    return (math.ceil(busiest / RPM) - 1) * WINDOW


def test_three_runners_share_one_budget_and_provoke_no_429(tmp_path: Path, pg_url: str) -> None:
    names = ["luna", "milo", "nora"]
    paths = [write_pipeline(tmp_path / n, name=n, scenes=SCENES) for n in names]
    sim = simulator()
    try:
        env = studio_env(sim.base_url, pg_url)
        began = time.monotonic()
        runners = [spawn(["run", str(p), "-q"], env=env, cwd=p.parent) for p in paths]
        finished = [r.communicate(timeout=180) for r in runners]
        took = time.monotonic() - began
        assert [r.returncode for r in runners] == [0, 0, 0], [err for _, err in finished]
        stats = sim_stats(sim.base_url)
    finally:
        sim.stop()
    assert stats["rate_limited"] == 0  # three processes, one budget: never over the limit
    assert stats["created"]["models"] == 3 and stats["duplicates"]["generations"] == 0
    floor = floor_seconds(stats)
    print(f"\nthree runners, one budget ({RPM}/{WINDOW:g}s per endpoint): {took:.1f}s; the "
          f"budget's floor {floor:.1f}s (busiest endpoint {max(stats['calls'].values())} "
          f"requests); 429s: {stats['rate_limited']}")
    view = bria(["status", "--all", "--json"], env=env, cwd=tmp_path)
    assert view.returncode == 0, view.stderr
    entries = {e["pipeline"]: e for e in json.loads(view.stdout)}
    assert sorted(entries) == names
    for entry in entries.values():
        assert (entry["phase"], entry["scenes_done"], entry["scenes_total"]) == ("done", 3, 3)
        assert entry["lease"] is None and entry["last_error"] is None
        assert entry["credits_spent"] == 80 + 3 * 3
        assert entry["training"].endswith("Completed")


def test_a_killed_runner_is_taken_over_from_another_host_after_its_lease_lapses(
        tmp_path: Path, pg_url: str) -> None:
    path = write_pipeline(tmp_path, scenes=SCENES, concurrency=1)
    sim = simulator()
    try:
        env = studio_env(sim.base_url, pg_url, BRIA_RUN_LEASE="5")
        killed = bria(["run", str(path), "-q"], cwd=tmp_path, env={
            **env, "BRIA_RUN_HOST": "machine-a", "BRIA_RUN_CRASH_AT": "after_send:generate@2"})
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        other = {**env, "BRIA_RUN_HOST": "machine-b"}
        # machine-b cannot see machine-a's processes: only the lease's expiry says it is gone.
        refused = bria(["run", str(path), "-q"], env=other, cwd=tmp_path)
        view = bria(["status", "--all"], env=other, cwd=tmp_path)
        heir = bria(["run", str(path), "--wait-lock", "30"], env=other, cwd=tmp_path)
        stats = sim_stats(sim.base_url)
    finally:
        sim.stop()
    assert refused.returncode == 1 and "machine-a" in refused.stderr, refused.stderr
    assert "machine-a pid" in view.stdout and "generation" in view.stdout, view.stdout
    assert heir.returncode == 0, heir.stderr
    assert "took over the lock" in heir.stderr and "machine-a" in heir.stderr
    # One answer was lost with the kill: at most one scene generated twice, nothing else.
    assert stats["duplicates"]["generations"] <= 1
    assert stats["created"]["models"] == 1 and stats["created"]["trainings_started"] == 1
    assert sorted(p.name for p in (tmp_path / "outputs").rglob("*.png")
                  if "previous" not in p.parts) == ["1.png", "1.png", "2.png"]


def test_a_paused_runner_whose_lease_was_taken_over_writes_nothing_more(
        tmp_path: Path, pg_url: str) -> None:
    """A zombie: frozen (SIGSTOP) past its lease, taken over, then woken: its next write is
    fenced off, it stops with the error that says so, and the heir's work stands."""
    path = write_pipeline(tmp_path, scenes=SCENES, concurrency=1)
    sim = simulator()
    try:
        sim.configure(training_seconds=3.0)
        env = studio_env(sim.base_url, pg_url, BRIA_RUN_LEASE="1.5")
        zombie = spawn(["run", str(path), "--json"], cwd=tmp_path,
                       env={**env, "BRIA_RUN_HOST": "machine-a"})
        assert zombie.stdout is not None
        for line in zombie.stdout:
            if '"training"' in line:  # the training is under way: freeze it here
                break
        zombie.send_signal(signal.SIGSTOP)
        heir = bria(["run", str(path), "-q", "--wait-lock", "30"], cwd=tmp_path,
                    env={**env, "BRIA_RUN_HOST": "machine-b"})
        zombie.send_signal(signal.SIGCONT)
        _, err = zombie.communicate(timeout=60)
        stats = sim_stats(sim.base_url)
    finally:
        sim.stop()
    assert heir.returncode == 0, heir.stderr
    assert zombie.returncode == 1, err
    assert "lease" in err and "taken over" in err, err
    assert stats["created"]["models"] == 1 and stats["duplicates"]["generations"] == 0
