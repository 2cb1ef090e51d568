"""One runner per state, and Ctrl-C: real bria-run processes against the simulator, signals
sent when bria-run's own `--json` events say the moment has come, and the simulator's
accounting to prove that a resume finishes with nothing duplicated."""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner
from simrun import TOKEN, bria, env_for, sim_stats, spawn, write_pipeline

from runner.cli import main
from runner.errors import LockHeld
from runner.simulator import SimConfig, Simulator
from runner.state.lock import STALE_AFTER, Holder, RunLock, current_holder, is_alive
from runner.state.store import Store

pytestmark = pytest.mark.slow

UPLOAD = "POST /v1/tailored-gen/datasets/{id}/images"
GENERATE = "POST /v2/image/generate/tailored"
SCENES = [{"name": f"scene{i}", "prompt": f"Luna, scene {i}"} for i in range(6)]
WAIT = 30.0  # seconds before a test gives up on an event (never reached when things work)


@pytest.fixture
def sim() -> Any:
    with Simulator(SimConfig(token=TOKEN, training_seconds=1.0, generation_seconds=0.1)) as s:
        yield s


@pytest.fixture(autouse=True)
def no_leftovers() -> Any:
    """A failed test must not leave a bria-run process behind."""
    yield
    for runner in Runner.started:
        if runner.process.poll() is None:
            runner.process.kill()
            runner.process.wait(timeout=WAIT)
    Runner.started.clear()


class Runner:
    """A bria-run process whose `--json` events are read as they come."""

    started: ClassVar[list[Runner]] = []

    def __init__(self, path: Path, sim: Simulator, *args: str) -> None:
        self.process = spawn(["run", str(path), "--json", *args], env=env_for(sim.base_url),
                             cwd=path.parent)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        Runner.started.append(self)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.put(json.loads(line))

    def wait_for(self, name: str, /, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.1)
            except queue.Empty:
                assert self.process.poll() is None, f"exited before {name} {match}: {self.stderr()}"
                continue
            self.seen.append(event)
            if event["event"] == name and all(event.get(k) == v for k, v in match.items()):
                return event
        raise AssertionError(f"no {name} {match} within {WAIT}s")

    def finish(self) -> tuple[int, str]:
        code = self.process.wait(timeout=WAIT)
        self._reader.join(timeout=WAIT)
        while not self.events.empty():
            self.seen.append(self.events.get())
        return code, self.stderr()

    def stderr(self) -> str:
        assert self.process.stderr is not None
        return self.process.stderr.read() if self.process.poll() is not None else ""


def resume(path: Path, sim: Simulator) -> subprocess.CompletedProcess[str]:
    return bria(["run", str(path)], env=env_for(sim.base_url), cwd=path.parent)


def assert_exactly_once(stats: dict[str, Any], images: int = 5) -> None:
    created, dups = stats["created"], stats["duplicates"]
    assert (created["projects"], created["datasets"], created["models"]) == (1, 1, 1)
    assert created["images"] == images and created["trainings_started"] == 1
    assert set(dups.values()) == {0}, dups


def logged(folder: Path, kind: str) -> list[dict[str, Any]]:
    with sqlite3.connect(folder / "state" / "luna.sqlite") as db:
        rows = db.execute("SELECT data FROM events WHERE kind = ?", (kind,)).fetchall()
    return [json.loads(r[0]) for r in rows]


def test_second_runner_is_refused_and_the_first_finishes(tmp_path: Path, sim: Simulator) -> None:
    sim.configure(latency_by_endpoint={UPLOAD: 0.5})
    path = write_pipeline(tmp_path)
    first = Runner(path, sim)
    first.wait_for("step", kind="upload", state="started")
    second = resume(path, sim)
    assert first.process.poll() is None  # refused while the first is still working
    assert second.returncode == 1
    assert f"pid {first.process.pid}" in second.stderr and "since" in second.stderr
    assert f"run: bria-run unlock {path}\n" in second.stderr  # a hint to paste as it is
    code, err = first.finish()
    assert code == 0, err
    assert_exactly_once(sim_stats(sim.base_url))


def test_sigkilled_holders_lock_is_broken_by_the_next_run(tmp_path: Path, sim: Simulator) -> None:
    sim.configure(latency_by_endpoint={UPLOAD: 0.5})
    path = write_pipeline(tmp_path)
    first = Runner(path, sim)
    first.wait_for("step", kind="upload", state="started")
    first.process.send_signal(signal.SIGKILL)
    assert first.finish()[0] == -signal.SIGKILL
    sim.configure(latency_by_endpoint={})
    again = resume(path, sim)
    assert again.returncode == 0, again.stderr
    assert f"took over the lock of a bria-run that is gone (pid {first.process.pid}" in again.stderr
    assert [e["pid"] for e in logged(tmp_path, "lock_broken")] == [first.process.pid]
    assert_exactly_once(sim_stats(sim.base_url))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_interrupt_mid_upload_finishes_in_flight_then_resumes(
    tmp_path: Path, sim: Simulator, signum: int
) -> None:
    sim.configure(latency_by_endpoint={UPLOAD: 0.5})
    path = write_pipeline(tmp_path, concurrency=2)
    runner = Runner(path, sim)
    runner.wait_for("step", kind="upload", state="started")
    runner.process.send_signal(signum)
    runner.wait_for("notice")  # "stopping: no new work; finishing requests in flight"
    code, err = runner.finish()
    assert code == 130, err
    assert f"Resume with: bria-run {path}" in err
    started = {e["key"] for e in runner.seen if e.get("kind") == "upload"}
    uploaded = sim_stats(sim.base_url)["created"]["images"]
    assert 1 <= uploaded < 5  # stopped starting new uploads ...
    done = {e["key"] for e in runner.seen if e.get("kind") == "upload" and e["state"] == "done"}
    assert len(done) == uploaded  # ... and every upload in flight finished and was recorded
    assert done <= started
    shown = CliRunner().invoke(main, ["plan", str(path), "--state", str(tmp_path / "state")])
    assert f"upload  {5 - uploaded} of 5 training images" in shown.stdout  # what is left
    again = resume(path, sim)
    assert again.returncode == 0, again.stderr
    assert "took over the lock" not in again.stderr  # the first runner released it
    assert_exactly_once(sim_stats(sim.base_url))


def test_interrupt_mid_generation_then_resume_duplicates_nothing(
    tmp_path: Path, sim: Simulator
) -> None:
    path = write_pipeline(tmp_path, scenes=SCENES, concurrency=2)
    sim.configure(generation_seconds=1.0)
    runner = Runner(path, sim)
    runner.wait_for("scene", state="generating")
    runner.process.send_signal(signal.SIGINT)
    code, err = runner.finish()
    assert code == 130, err
    assert "Resume with:" in err
    submitted = sim_stats(sim.base_url)["calls"].get(GENERATE, 0)
    assert 1 <= submitted < len(SCENES)
    again = resume(path, sim)
    assert again.returncode == 0, again.stderr
    stats = sim_stats(sim.base_url)
    assert stats["calls"][GENERATE] == len(SCENES)  # the jobs in flight were picked up, not resent
    assert_exactly_once(stats)
    assert sorted(p.parent.name for p in (tmp_path / "outputs").rglob("*.png")) == sorted(
        s["name"] for s in SCENES)


def test_second_interrupt_exits_at_once_and_the_state_stays_consistent(
    tmp_path: Path, sim: Simulator
) -> None:
    sim.configure(latency_by_endpoint={UPLOAD: 1.0})
    path = write_pipeline(tmp_path, concurrency=2)
    runner = Runner(path, sim)
    runner.wait_for("step", kind="upload", state="started")
    runner.process.send_signal(signal.SIGINT)
    runner.wait_for("notice")
    runner.process.send_signal(signal.SIGINT)
    code, err = runner.finish()
    assert code == 130, err
    assert "stopped at once" in err
    # Uploads cut mid-request may still be processed by Bria (it sleeps its latency first);
    # once they are, a resume adopts them by name instead of uploading again.
    time.sleep(1.5)
    sim.configure(latency_by_endpoint={})
    again = resume(path, sim)
    assert again.returncode == 0, again.stderr
    assert "took over the lock" in again.stderr  # the abrupt exit left it; its pid is gone
    assert_exactly_once(sim_stats(sim.base_url))


def gone_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


HOLDERS = [
    pytest.param("here", "live", 0.0, True, id="this-host-live-pid"),
    pytest.param("here", "gone", 0.0, False, id="this-host-pid-gone"),
    pytest.param("elsewhere", "gone", 0.0, True, id="other-host-fresh-heartbeat"),
    pytest.param("elsewhere", "live", STALE_AFTER + 1, False, id="other-host-silent-too-long"),
    pytest.param("here", "live", STALE_AFTER + 1, False, id="this-host-silent-too-long"),
]


@pytest.mark.parametrize(("host", "pid", "silent", "alive"), HOLDERS)
def test_a_holder_is_alive_while_it_can_be_seen_or_heard(
    host: str, pid: str, silent: float, alive: bool
) -> None:
    holder = Holder("owner", os.getpid() if pid == "live" else gone_pid(), host, "bria-run x",
                    started_at=1000.0, heartbeat_at=1000.0)
    assert is_alive(holder, now=1000.0 + silent, host="here") is alive


def test_run_lock_refuses_a_second_holder_until_released(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite", None) as store:
        with RunLock(store, "bria-run first"):
            with pytest.raises(LockHeld) as held:
                RunLock(store, "bria-run second").acquire()
            assert (held.value.pid, held.value.command) == (os.getpid(), "bria-run first")
        with RunLock(store, "bria-run second"):
            assert current_holder(store).command == "bria-run second"  # type: ignore[union-attr]
        assert current_holder(store) is None
