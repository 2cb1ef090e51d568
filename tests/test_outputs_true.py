"""Outputs kept true: a deleted output is noticed by `outputs`, `status`, `plan` and the next
run, which restores it (from the recorded link while valid, else made again with its seed); an
altered one is restored only with --restore, and kept aside, never deleted."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from simrun import TOKEN, write_pipeline

from runner.app import plan_from_state
from runner.bria.client import BriaClient
from runner.cli import main
from runner.display.render import outputs_data, status_data
from runner.display.reporters import QuietReporter
from runner.engine.context import Context, RunOptions
from runner.engine.executor import Engine
from runner.engine.outputs import file_state, output_facts
from runner.engine.planned import Action
from runner.pipeline.loader import load_pipeline
from runner.pipeline.spec import Pipeline
from runner.simulator import SimConfig, Simulator
from runner.state.fingerprint import sha256_file
from runner.state.rows import ApiIdentity, FileState
from runner.state.store import Store

GENERATE = "POST /v2/image/generate/tailored"
SCENES = [{"name": n, "prompt": f"Luna {n}"} for n in ("forest", "reading", "beach")]


@dataclass
class World:
    sim: Simulator
    spec: Pipeline
    state: Path
    client: BriaClient

    def store(self) -> Store:
        return Store.open(self.state, ApiIdentity("real", self.sim.base_url))

    def run(self, *, restore: bool = False) -> Engine:
        with self.store() as store:
            hashes = dict(self.spec.image_hashes)
            the_plan = plan_from_state(self.spec, store, hashes, restore=restore)
            ctx = Context(self.spec, the_plan, store, self.client, QuietReporter(),
                          RunOptions(job_poll=0.05, poll_every=0.1, restore=restore),
                          hashes=hashes)
            engine = Engine(ctx)
            if the_plan.has_work:
                engine.run()
            return engine

    def out(self, scene: str) -> Path:
        return self.spec.outputs / scene / "1.png"

    def generated(self) -> int:
        return int(self.sim.stats()["calls"][GENERATE])

    def cli(self, *args: str) -> str:
        result = CliRunner().invoke(main, [*args, str(self.spec.path), "--state",
                                           str(self.state)])
        assert result.exit_code == 0, result.output
        return result.stdout


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    config = SimConfig(token=TOKEN, training_seconds=0.2, generation_seconds=0.05)
    with Simulator(config) as sim:
        spec, _ = load_pipeline(write_pipeline(tmp_path, scenes=SCENES, concurrency=1))
        client = BriaClient(sim.base_url, TOKEN, rpm=None)
        done = World(sim, spec, tmp_path / "state" / "luna.sqlite", client)
        done.run()
        yield done
        client.close()


def alter(path: Path) -> bytes:
    """Same size, other bytes (a retouch saved over it)."""
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(bytes(data))
    return bytes(data)


def test_missing_and_altered_files_are_seen_by_outputs_status_and_plan(world: World) -> None:
    world.out("forest").unlink()
    alter(world.out("reading"))
    listed = json.loads(world.cli("outputs", "--json"))
    assert {f["scene"]: f["file"] for f in listed["files"]} == {
        "forest": "missing", "reading": "altered", "beach": "ok"}
    assert "MISSING" in world.cli("outputs") and "ALTERED" in world.cli("outputs")
    status = json.loads(world.cli("status", "--json"))
    assert status["outputs"] == {"ok": 1, "missing": 1, "altered": 1}
    assert "outputs: 1 ok, 1 missing, 1 altered" in world.cli("status")
    plan = {s["key"]: s for s in json.loads(world.cli("plan", "--json"))["steps"]}
    forest, reading = plan["scene/forest/1"], plan["scene/reading/1"]
    assert forest["action"] == Action.RESUME and forest["reason"].startswith("output missing")
    assert reading["action"] == Action.DONE and "--restore" in reading["reason"]
    assert json.loads(world.cli("plan", "--json"))["estimate"]["credits"] == 3  # one image
    text = world.cli("plan")
    assert "scene/forest/1               resume: output missing; restored from its" in text
    assert "scene/reading/1              done; its output was altered since" in text
    restoring = json.loads(world.cli("plan", "--json", "--restore"))
    assert restoring["estimate"]["credits"] == 6


def test_the_next_run_restores_a_missing_file_from_its_link_without_paying(world: World) -> None:
    recorded = sha256_file(world.out("forest"))
    world.out("forest").unlink()
    altered = alter(world.out("reading"))
    before = world.generated()
    engine = world.run()
    assert engine.summary.done == ["scene/forest/1"]
    assert sha256_file(world.out("forest")) == recorded
    assert world.generated() == before  # the recorded link, not a new generation
    assert world.out("reading").read_bytes() == altered  # untouched without --restore
    assert not world.run().summary.done  # nothing left to do


def test_restore_moves_an_altered_file_aside_and_restores_it(world: World) -> None:
    recorded = sha256_file(world.out("reading"))
    altered = alter(world.out("reading"))
    engine = world.run(restore=True)
    assert engine.summary.done == ["scene/reading/1"]
    assert sha256_file(world.out("reading")) == recorded
    kept = list((world.spec.outputs / "reading" / "previous").rglob("1.png"))
    assert [p.read_bytes() for p in kept] == [altered]  # never deleted
    assert kept[0].parent.name.startswith("altered-")
    listed = json.loads(world.cli("outputs", "--json"))
    assert {f["file"] for f in listed["files"]} == {"ok"}
    page = json.loads(Path(world.cli("gallery").strip()).with_name("index.json").read_text())
    reading = next(s for s in page["scenes"] if s["name"] == "reading")
    assert [p["sha256"] for p in reading["previous"]] == [hashlib.sha256(altered).hexdigest()]


def test_an_expired_link_is_made_again_with_the_recorded_seed(world: World) -> None:
    recorded = sha256_file(world.out("beach"))
    world.out("beach").unlink()
    with world.sim.lock:  # every link made so far has expired
        for job in world.sim.world.jobs.values():
            job.link_ttl = 0.0
    before = world.generated()
    world.run()
    assert world.generated() == before + 1
    assert sha256_file(world.out("beach")) == recorded  # the same seed: the same image


def test_the_quick_check_hashes_only_files_modified_since_they_were_recorded(
        world: World) -> None:
    with world.store() as store:
        artifacts = store.load().artifacts
        # The lean rows a run plans from say the same as the full ones, current ones only.
        lean = store.current_outputs()
        assert output_facts(lean) == output_facts(artifacts)
        assert sorted(a.step_id for a in lean) == sorted(a.step_id for a in artifacts
                                                          if a.is_current)
    path = Path(next(a.path for a in artifacts if a.scene == "beach"))
    stat = path.stat()
    alter(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # altered, mtime put back
    quick, full = output_facts(artifacts), output_facts(artifacts, verify=True)
    ids = {a.scene: a.step_id for a in artifacts}
    assert quick[ids["beach"]] == FileState.OK  # the documented limit of the quick check
    assert full[ids["beach"]] == FileState.ALTERED
    path.write_bytes(b"short")
    assert file_state(path, "0" * 64, size=stat.st_size, recorded_at=1e12) == FileState.ALTERED


def test_render_gives_every_file_its_state(world: World) -> None:
    world.out("beach").unlink()
    with world.store() as store:
        recorded = store.load()
    from runner.engine.plan import plan

    the_plan = plan(world.spec, recorded, world.spec.image_hashes)
    data = outputs_data(recorded, the_plan)
    assert [f["file"] for f in data["files"]] == ["missing", "ok", "ok"]  # beach sorts first
    assert status_data(the_plan, recorded, "x", None)["outputs"]["missing"] == 1
