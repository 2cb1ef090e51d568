"""The fault-storm suite: bria-run against a simulator in hard weather (slow creating POSTs,
slow polls, dropped and refused connections, 5xx and 429 storms, a restart mid-run), one run
each, proving from the simulator's own accounting that it finished by itself, created nothing
twice but what the bound allows, provoked no 429 after the first, and wrote the images of a
calm run.

The simulator draws each request's faults from its seed and the request itself (not the order
of arrival), so every storm below replays the same faults on the paid routes at every run.
Where a storm can lose a paid POST's answer (a drop, a gateway's 502/504), its seed is one
where no generation loses two answers: that is the bound's case (the scene stops with the
paid-job message), tested on its own with answers slower than any timeout.

Timings are the simulator's seconds, not Bria's minutes: the client's timeouts and first
back-off are shortened through ``BRIA_RUN_*`` (runner/bria/env.py), the outage tolerance through
``--outage-tolerance``. The figures of each case are printed (pytest -s) for the README.
"""

from __future__ import annotations

import hashlib
import socket
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from simrun import TOKEN, bria, env_for, sim_stats, spawn, write_pipeline

from runner.simulator import SimConfig, Simulator

pytestmark = pytest.mark.slow

GENERATE = "POST /v2/image/generate/tailored"
STRUCTURED = "POST /v2/structured_prompt/generate"
MODEL = "GET /v1/tailored-gen/models/{id}"
STATUS = "GET /v2/status/{id}"
SCENES = [
    {"name": "forest", "reference": "scenes/forest.png", "prompt": "Luna in a forest"},
    {"name": "reading", "prompt": "Luna reading by the fire", "variations": 2},
]
IMAGES_OUT = 3
RPM = 120  # the simulator's per-endpoint limit and the client's: storms must not provoke it
# Short client timings, so a 3 s answer is "slow" and a storm is waited out in seconds.
QUICK = {"BRIA_RUN_READ_TIMEOUT": "1", "BRIA_RUN_CREATE_TIMEOUT": "5",
         "BRIA_RUN_RETRY_BASE": "0.1"}


def simulator(port: int = 0, **settings: Any) -> Simulator:
    config = SimConfig(**{"token": TOKEN, "training_seconds": 1.0, "generation_seconds": 0.2,
                          "rpm": RPM, **settings})
    return Simulator(config, port=port).start()


def outputs(folder: Path) -> dict[str, str]:
    root = folder / "outputs"
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.png")) if "previous" not in p.parts}


def args(path: Path, *, quiet: bool = True) -> list[str]:
    return ["run", str(path), *(["-q"] if quiet else []), "--rpm", str(RPM),
            "--outage-tolerance", "2m"]


@dataclass
class Weather:
    """What one case did: its exit codes (one per run), the simulator's stats, the time."""

    codes: list[int] = field(default_factory=list)
    stderrs: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    stderr: str = ""  # the last run's

    def figures(self, case: str) -> str:
        s = self.stats
        return (f"{case}: runs {len(self.codes)} (re-runs {len(self.codes) - 1}), generation "
                f"duplicates {s['duplicates']['generations']}, credits {s['credits']}, "
                f"faults {s['faults']}, provoked 429s {s['rate_limited']}, {self.seconds:.1f} s")


def weather(folder: Path, sim: Simulator, *, runs: int = 1, **extra: str) -> Weather:
    path = write_pipeline(folder, scenes=SCENES)
    env, began, seen = env_for(sim.base_url, **{**QUICK, **extra}), time.monotonic(), Weather()
    for _ in range(runs):
        result = bria(args(path), env=env, cwd=folder, timeout=150)
        seen.codes.append(result.returncode)
        seen.stderrs.append(result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        if result.returncode == 0:
            break
    seen.seconds = time.monotonic() - began
    seen.stderr = seen.stderrs[-1]
    seen.stats = sim_stats(sim.base_url)
    return seen


def assert_nothing_twice(stats: dict[str, Any], generation_duplicates: int = 0) -> None:
    created, dups = stats["created"], stats["duplicates"]
    assert (created["projects"], created["datasets"], created["models"]) == (1, 1, 1)
    assert created["trainings_started"] == 1 and created["images"] == 5
    assert (dups["projects"], dups["datasets"], dups["images"], dups["models"]) == (0, 0, 0, 0)
    assert dups["generations"] <= generation_duplicates, dups
    assert stats["rate_limited"] <= 1  # the simulator's own limit: at most the first 429


@pytest.fixture(scope="module")
def calm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("calm")
    sim = simulator()
    try:
        seen = weather(folder, sim)
        assert seen.codes == [0], seen.stderr
        print(f"\n{seen.figures('calm')}")
        return {"outputs": outputs(folder), "stats": seen.stats}
    finally:
        sim.stop()


def test_slow_creating_posts_are_waited_for_not_bought_again(
    tmp_path: Path, calm: dict[str, Any]
) -> None:
    """Answers slower than a GET's timeout (1 s here, 30 s at Bria) but within the creating
    POSTs' own (5 s here, 90 s at Bria): each job is bought once."""
    sim = simulator(latency_by_endpoint={GENERATE: 3.0, STRUCTURED: 3.0})
    try:
        seen = weather(tmp_path, sim)
    finally:
        sim.stop()
    print(f"\n{seen.figures('slow creating POSTs (3 s)')}")
    assert seen.codes == [0], seen.stderr
    assert_nothing_twice(seen.stats, generation_duplicates=0)
    assert seen.stats["credits"] == calm["stats"]["credits"]
    assert outputs(tmp_path) == calm["outputs"]


def test_answers_slower_than_any_timeout_buy_at_most_one_duplicate_per_scene(
    tmp_path: Path,
) -> None:
    """Every generation answer is lost (the route answers after the POST timeout): each scene
    is sent twice, then failed with a message saying a paid job may exist, and nothing more."""
    sim = simulator(latency_by_endpoint={GENERATE: 3.0})
    try:
        seen = weather(tmp_path, sim, BRIA_RUN_CREATE_TIMEOUT="1.5")
        time.sleep(1.6)  # the last lost POSTs reach the world
        stats = sim_stats(sim.base_url)
    finally:
        sim.stop()
    print(f"\n{Weather(seen.codes, [], stats, seen.seconds).figures('lost POST answers')}")
    assert seen.codes == [1]
    assert seen.stderr.count("A paid job may exist at Bria") == IMAGES_OUT, seen.stderr
    assert stats["calls"][GENERATE] == 2 * IMAGES_OUT  # sent, re-sent once, then no more
    assert_nothing_twice(stats, generation_duplicates=IMAGES_OUT)  # one per scene
    assert outputs(tmp_path) == {}


@pytest.mark.parametrize("endpoint", [MODEL, STATUS])
def test_slow_polls_are_waited_for(tmp_path: Path, calm: dict[str, Any], endpoint: str) -> None:
    """A status check slower than its timeout is retried with a longer one: the training (or
    the job) is never abandoned because one check was slow."""
    sim = simulator(latency_by_endpoint={endpoint: 1.5})
    try:
        seen = weather(tmp_path, sim)
    finally:
        sim.stop()
    print(f"\n{seen.figures(f'slow polls ({endpoint}, 1.5 s)')}")
    assert seen.codes == [0], seen.stderr
    assert_nothing_twice(seen.stats)
    assert outputs(tmp_path) == calm["outputs"]


# Faults by what they prove (runner/simulator/faults.py says where each falls against the work).
NOTHING_MADE = ("500", "503", "storm")  # Bria said so: sent again freely
LOST = ("502", "504", "drop_before", "drop_after", "lost")  # may have been made: counted
MADE = ("504", "drop_after", "lost")  # the simulator did the work, then the answer was lost
PAID = {GENERATE: "generate", STRUCTURED: "structured_prompt"}  # route -> the engine's op

STORMS = [  # settings, then (fault kinds, at least this many on the paid routes): what it covers
    pytest.param({"fail_rate": 0.2, "seed": 3}, [(("500", "503"), 1), (("502", "504"), 2)],
                 id="5xx-20%"),
    pytest.param({"fail_rate": 0.4, "seed": 5}, [(("500", "503"), 2), (("502", "504"), 2)],
                 id="5xx-40%"),
    pytest.param({"storm_rate": 0.3, "seed": 6}, [(("storm",), 1)], id="429-30%"),
    pytest.param({"drop_rate": 0.3, "seed": 6}, [(("drop_before",), 1), (("drop_after",), 1)],
                 id="drop-30%"),
    pytest.param({"refuse_rate": 0.3, "seed": 3}, [], id="refused-30%"),
]


def intents(folder: Path) -> Counter[tuple[str, str]]:
    """The POSTs bria-run's state recorded, by operation and what became of them."""
    with sqlite3.connect(folder / "state" / "luna.sqlite") as db:
        rows = db.execute("SELECT op, outcome, count(*) FROM intents GROUP BY op, outcome")
        return Counter({(op, outcome or "unknown"): n for op, outcome, n in rows})


def on(routes: dict[str, dict[str, int]], route: str, kinds: tuple[str, ...]) -> int:
    return sum(routes.get(route, {}).get(kind, 0) for kind in kinds)


@pytest.mark.parametrize(("storm", "covers"), STORMS)
def test_storms_are_finished_in_one_run(
    tmp_path: Path, calm: dict[str, Any], storm: dict[str, Any],
    covers: list[tuple[tuple[str, ...], int]],
) -> None:
    """What proves nothing was made (Bria's 500/503, a 429, a connection refused) is sent again
    as often as needed, never counted; a lost answer (a drop on either side of the work, a
    gateway's 502/504) spends the scene's one re-send. The run finishes by itself, and the
    client's record of each paid POST matches what the simulator did to it."""
    sim = simulator(**storm)
    try:
        seen = weather(tmp_path, sim)
    finally:
        sim.stop()
    print(f"\n{seen.figures(f'storm {storm}')}")
    assert seen.codes == [0], seen.stderr
    stats, routes, recorded = seen.stats, seen.stats["fault_routes"], intents(tmp_path)
    paid = {outcome: sum(n for (op, o), n in recorded.items() if o == outcome and op in
                         PAID.values()) for outcome in ("unanswered", "rejected")}
    print(f"  paid POSTs: answers lost {paid['unanswered']} (on generations: "
          f"{on(routes, GENERATE, LOST)}, after the work {on(routes, GENERATE, MADE)}), "
          f"proven unmade and sent again {paid['rejected']}")
    for kinds, least in covers:  # the seed did put these faults on the paid routes
        assert sum(on(routes, route, kinds) for route in PAID) >= least, routes
    provoked = stats["rate_limited"]
    for route, op in PAID.items():
        assert recorded[(op, "unanswered")] == on(routes, route, LOST), (op, recorded, routes)
        refused = recorded[(op, "rejected")] - on(routes, route, NOTHING_MADE)
        assert refused >= 0 and (storm.get("refuse_rate") or refused <= provoked), recorded
    assert stats["calls"][GENERATE] == (IMAGES_OUT + on(routes, GENERATE, NOTHING_MADE + LOST)
                                        + provoked)  # every send that reached Bria, and no other
    assert_nothing_twice(stats, generation_duplicates=on(routes, GENERATE, MADE))
    assert stats["duplicates"]["generations"] == on(routes, GENERATE, MADE)
    if storm.get("refuse_rate"):
        assert stats["faults"]["refuse"] >= 2
        assert sum(n for (_, outcome), n in recorded.items() if outcome == "rejected") >= 1
    assert outputs(tmp_path) == calm["outputs"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_simulator_restarted_mid_run_is_waited_out(
    tmp_path: Path, calm: dict[str, Any]
) -> None:
    """Bria goes away for a few seconds while the training runs (its world kept on disk): the
    run waits, showing how long Bria has been unreachable, and finishes by itself."""
    port, world = free_port(), tmp_path / "world.json"
    sim = simulator(port, persist_path=world, training_seconds=4.0)
    path = write_pipeline(tmp_path, scenes=SCENES)
    began = time.monotonic()
    process = spawn(args(path, quiet=False), env=env_for(sim.base_url, **QUICK), cwd=tmp_path)
    try:
        while sim_stats(sim.base_url)["created"]["trainings_started"] == 0:
            assert process.poll() is None and time.monotonic() - began < 60
            time.sleep(0.1)
        sim.stop()
        time.sleep(4.0)  # Bria is unreachable
        sim = simulator(port, persist_path=world, training_seconds=4.0)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
        stats = sim_stats(sim.base_url)
        sim.stop()
    print(f"\nrestart mid-run: exit {process.returncode}, {time.monotonic() - began:.1f} s")
    assert process.returncode == 0, stderr
    assert "Bria unreachable for" in stderr and "training is not affected" in stderr, stderr
    assert_nothing_twice(stats)
    assert outputs(tmp_path) == calm["outputs"]
