"""No failure in silence: any exception in any step, bria-run's own or not, stops new work and
ends the run with one error naming the step and the cause; 429s are waited out, never counted;
no training starts on part of the dataset; a full disk is said as such and loses nothing.

The engine runs in-process against the simulator over real HTTP; faults are injected at the
crash suite's named boundaries (``=assert``, ``=enospc``) or by a transport in front of it."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import httpx
import pytest
from simrun import TOKEN, make_image

from runner.bria.client import BriaClient
from runner.display.render import plan_text
from runner.display.reporters import QuietReporter
from runner.engine.context import Context, RunOptions
from runner.engine.crashpoints import CrashPoints
from runner.engine.executor import Engine
from runner.engine.plan import plan
from runner.errors import (
    BriaRunError,
    DatasetIncomplete,
    DiskFull,
    ResourceGone,
    RunFailed,
    StepCrashed,
)
from runner.pipeline.spec import Character, Identity, Pipeline, Scene, Training
from runner.simulator import SimConfig, Simulator
from runner.state.fingerprint import sha256_file
from runner.state.rows import ApiIdentity, StepStatus
from runner.state.store import Store

TRAIN = "POST /v1/tailored-gen/models/{id}/start_training"
GENERATE = "POST /v2/image/generate/tailored"
UPLOAD = "POST /v1/tailored-gen/datasets/{id}/images"


def pipeline(folder: Path, *, scenes: int = 3, concurrency: int = 2) -> Pipeline:
    images = tuple(make_image(folder / "training" / f"{i}.png", i) for i in range(5))
    return Pipeline(
        path=folder / "luna.yaml", name="luna",
        character=Character(name="Luna", type="defined_character", medium="illustration",
                            images=images, identity=Identity("auto", samples=5),
                            description="girl with blue hair"),
        training=Training(poll_every=0.1),
        concurrency=concurrency,
        scenes=tuple(Scene(name=f"s{n}", prompt=f"Luna {n}") for n in range(scenes)),
        outputs=folder / "outputs",
    )


@pytest.fixture
def sim() -> Any:
    with Simulator(SimConfig(token=TOKEN, training_seconds=0.2, generation_seconds=0.05)) as s:
        yield s


def engine(spec: Pipeline, store: Store, client: BriaClient, fault: str = "", *,
           retrain: bool = False) -> Engine:
    hashes = {p: sha256_file(p) for p in spec.character.images}
    ctx = Context(spec, plan(spec, store.load(), hashes, retrain=retrain), store, client,
                  QuietReporter(),
                  RunOptions(job_poll=0.05, poll_every=0.1, grace=5.0),
                  hooks=CrashPoints(fault), hashes=hashes)
    return Engine(ctx)


def run(tmp_path: Path, sim: Simulator, spec: Pipeline, fault: str = "",
        transport: httpx.BaseTransport | None = None) -> Engine:
    client = BriaClient(sim.base_url, TOKEN, rpm=None, transport=transport)
    with Store.open(tmp_path / "s.sqlite", ApiIdentity("real", sim.base_url)) as store:
        ran = engine(spec, store, client, fault)
        try:
            ran.run()
        finally:
            client.close()
    return ran


def failing(tmp_path: Path, sim: Simulator, spec: Pipeline, fault: str) -> BriaRunError:
    with pytest.raises(BriaRunError) as caught:
        run(tmp_path, sim, spec, fault)
    return caught.value


def is_completed(sim: Simulator) -> bool:
    with sim.lock:
        return any(d.status == "completed" for d in sim.world.datasets.values())


def step_status(tmp_path: Path, key: str) -> str | None:
    with Store.open(tmp_path / "s.sqlite", None) as store:
        row = store.load().current(key)
    return None if row is None else row.status


def test_an_assertion_in_an_upload_stops_the_run_before_any_training(
        tmp_path: Path, sim: Simulator) -> None:
    spec = pipeline(tmp_path)
    error = failing(tmp_path, sim, spec, "after_record:upload_image@3=assert")
    assert isinstance(error, StepCrashed)
    assert error.step.startswith("upload/")
    assert str(error).startswith(f"{error.step} stopped the run: AssertionError: injected")
    assert "No new work was started and everything finished is recorded" in str(error)
    calls = sim.stats()["calls"]
    assert calls.get(TRAIN, 0) == 0 and not is_completed(sim)
    assert calls[UPLOAD] <= 4  # the third and at most one in flight beside it; never all 5
    assert step_status(tmp_path, error.step) == StepStatus.FAILED
    assert step_status(tmp_path, "train") is None
    # The next run, without the fault, finishes; the upload that landed is not sent twice.
    run(tmp_path, sim, spec)
    assert sim.stats()["duplicates"]["images"] == 0
    assert sim.stats()["calls"][TRAIN] == 1


def test_an_assertion_in_a_generation_stops_every_other_scene(
        tmp_path: Path, sim: Simulator) -> None:
    spec = pipeline(tmp_path, scenes=4, concurrency=1)
    error = failing(tmp_path, sim, spec, "after_record:generate=assert")
    assert isinstance(error, StepCrashed) and error.step == "scene/s0/1"
    assert sim.stats()["calls"][GENERATE] == 1  # nothing after it started
    assert step_status(tmp_path, "scene/s1/1") is None


def test_a_full_disk_writing_an_output_says_so_and_the_next_run_pays_nothing(
        tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = pipeline(tmp_path, scenes=3, concurrency=1)
    error = failing(tmp_path, sim, spec, "download=enospc")
    assert isinstance(error, DiskFull)
    assert str(error) == ("disk full writing outputs/s0/1.png; nothing lost: free space and "
                          "run again")
    assert sim.stats()["calls"][GENERATE] == 1
    assert not list((tmp_path / "outputs").rglob("*.part"))  # no half-written file left
    run(tmp_path, sim, spec)
    stats = sim.stats()
    assert stats["calls"][GENERATE] == 3  # s0's paid result downloaded, not generated again
    assert stats["duplicates"]["generations"] == 0
    assert sorted(p.name for p in (tmp_path / "outputs").rglob("*.png")) == ["1.png"] * 3


def test_a_full_disk_writing_the_state_says_which_file(tmp_path: Path, sim: Simulator) -> None:
    spec = pipeline(tmp_path, scenes=1)

    class Full(CrashPoints):
        def reach(self, boundary: str, op: str = "") -> None:
            if boundary == "after_record" and op == "create_dataset":
                import sqlite3

                from sqlalchemy.exc import OperationalError

                orig = sqlite3.OperationalError("database or disk is full")
                orig.sqlite_errorcode = 13  # type: ignore[attr-defined]
                # As SQLAlchemy raises it from a commit: the store names its file.
                with store.transaction():
                    raise OperationalError("COMMIT", {}, orig)

    client = BriaClient(sim.base_url, TOKEN, rpm=None)
    with Store.open(tmp_path / "s.sqlite", ApiIdentity("real", sim.base_url)) as store:
        ran = engine(spec, store, client)
        ran.ctx.hooks = Full("")
        with pytest.raises(DiskFull) as caught:
            ran.run()
    client.close()
    assert caught.value.path == str(tmp_path / "s.sqlite")
    assert "nothing lost: free space and run again" in str(caught.value)


class Storm(httpx.BaseTransport):
    """Answers the first ``count`` uploads 429 (Retry-After: 0), then passes everything on."""

    def __init__(self, count: int) -> None:
        self.count, self.inner = count, httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/images") and self.count:
            self.count -= 1
            request.read()
            return httpx.Response(429, headers={"Retry-After": "0"},
                                  json={"message": "Request limit exceeded"})
        return self.inner.handle_request(request)


def test_rate_limit_answers_are_waited_out_never_counted_as_attempts(
        tmp_path: Path, sim: Simulator) -> None:
    spec = pipeline(tmp_path, scenes=1, concurrency=1)
    storm = Storm(12)  # more 429s in a row than POST attempts: once an "unreachable" crash
    run(tmp_path, sim, spec, transport=storm)
    assert storm.count == 0
    assert sim.stats()["created"]["images"] == 5 and sim.stats()["calls"][TRAIN] == 1


def test_no_training_on_part_of_the_dataset(tmp_path: Path, sim: Simulator) -> None:
    """Bria lost one upload (or the state wrongly says it was sent): refuse to complete the
    dataset, and so to train; name the image."""
    spec = pipeline(tmp_path, scenes=1)

    class LoseOne(CrashPoints):
        def reach(self, boundary: str, op: str = "") -> None:
            # Uploads run concurrently: lose exactly one, under the simulator's lock.
            with sim.lock:
                if boundary == "after_record" and op == "upload_image" and not self.lost:
                    dataset = next(iter(sim.world.datasets.values()))
                    self.lost = sim.world.images[dataset.image_ids.pop()].image_name

    hooks = LoseOne("")
    hooks.lost = ""  # type: ignore[attr-defined]
    client = BriaClient(sim.base_url, TOKEN, rpm=None)
    with Store.open(tmp_path / "s.sqlite", ApiIdentity("real", sim.base_url)) as store:
        ran = engine(spec, store, client)
        ran.ctx.hooks = hooks
        with pytest.raises(DatasetIncomplete) as caught:
            ran.run()
        assert sim.stats()["calls"].get(TRAIN, 0) == 0 and not is_completed(sim)
        # The way out the message names: --retrain uploads every image into a new dataset.
        again = engine(spec, store, client, retrain=True)
        again.run()
        assert again.ctx.ids["dataset"] != caught.value.dataset_id
        with sim.lock:
            assert len(sim.world.datasets[again.ctx.ids["dataset"]].image_ids) == 5
    client.close()
    assert caught.value.missing == [hooks.lost]  # type: ignore[attr-defined]
    assert str(caught.value).startswith(f"dataset {caught.value.dataset_id} at Bria lacks 1 of "
                                        f"the 5 declared training image(s) ({hooks.lost}): "
                                        "refusing to complete the dataset on part of the images")
    assert sim.stats()["calls"][TRAIN] == 1  # only the rebuilt dataset's


def test_an_oserror_other_than_a_full_disk_is_a_crash_naming_it(tmp_path: Path) -> None:
    from runner.engine.executor import failure_of

    crash = failure_of("scene/a/1", PermissionError(errno.EACCES, "Permission denied", "x.png"))
    assert isinstance(crash, StepCrashed)
    assert str(crash).startswith("scene/a/1 stopped the run: PermissionError: [Errno 13] "
                                 "Permission denied: 'x.png' (unexpected; traceback not kept")
    full = failure_of("scene/a/1", OSError(errno.ENOSPC, "No space left on device", "y.png"))
    assert isinstance(full, DiskFull) and full.path == "y.png"


@pytest.mark.parametrize("version", ["fibo", "light"])
def test_a_job_past_the_job_timeout_fails_its_scene_the_others_go_on(
        tmp_path: Path, version: str) -> None:
    """The first job takes a minute; --job-timeout 0.5 s: that scene fails with a message,
    the two after it finish, and the next run sends it once more."""
    base = pipeline(tmp_path, scenes=3, concurrency=1)
    spec = Pipeline(**{**base.__dict__, "training": Training(version=version, poll_every=0.1)})

    class SlowFirst(CrashPoints):
        def reach(self, boundary: str, op: str = "") -> None:
            if boundary == "after_record" and op == "generate":
                sim.configure(generation_seconds=0.05)  # only the first job is slow

    config = SimConfig(token=TOKEN, training_seconds=0.2, generation_seconds=60)
    with Simulator(config) as sim, \
            Store.open(tmp_path / "s.sqlite", ApiIdentity("real", sim.base_url)) as store:
        client = BriaClient(sim.base_url, TOKEN, rpm=None)
        ran = engine(spec, store, client)
        ran.ctx.options = RunOptions(job_poll=0.05, poll_every=0.1, job_timeout=0.5)
        ran.ctx.hooks = SlowFirst("")
        with pytest.raises(RunFailed) as caught:
            ran.run()
        assert list(caught.value.failures) == ["scene/s0/1"]
        why = caught.value.failures["scene/s0/1"]
        assert why.startswith("generation job did not finish in time")
        assert why.endswith(": still in progress after --job-timeout 0.5s; the next run sends "
                            "it once more")
        assert [k for k in ran.summary.done if k.startswith("scene/")] == ["scene/s1/1",
                                                                           "scene/s2/1"]
        sim.configure(generation_seconds=0.05)
        again = engine(spec, store, client)
        again.run()
        assert again.summary.done == ["scene/s0/1"]
        sent = sum(v for k, v in sim.stats()["calls"].items()
                   if k in (GENERATE, "POST /v1/text-to-image/tailored/{id}"))
        assert sent == 4  # three scenes, and the timed-out one once more
        client.close()


@pytest.mark.parametrize("kind", ["model", "project"])
def test_a_resource_gone_at_bria_is_named_and_retrain_rebuilds_from_it(
        tmp_path: Path, sim: Simulator, kind: str) -> None:
    """Bria's world lost the model (or the whole project): a run with work stops naming it,
    exit 1; `--retrain` makes a new one and everything after it, and finishes."""
    spec = pipeline(tmp_path, scenes=1)
    client = BriaClient(sim.base_url, TOKEN, rpm=None)
    with Store.open(tmp_path / "s.sqlite", ApiIdentity("real", sim.base_url)) as store:
        first = engine(spec, store, client)
        first.run()
        remote_id = first.ctx.ids[kind]
        with sim.lock:
            if kind == "model":
                sim.world.delete_model(remote_id)
            else:
                sim.world.delete_project(remote_id)
        more = Pipeline(**{**spec.__dict__, "scenes": (*spec.scenes, Scene("new", "Luna new"))})
        with pytest.raises(ResourceGone) as caught:
            engine(more, store, client).run()
        assert caught.value.exit_code == 1
        assert str(caught.value).startswith(f"{kind} {remote_id} no longer exists at Bria "
                                            "(deleted, or the account's resources were reset). "
                                            "Run again with --retrain")
        shown = plan_text(engine(more, store, client).ctx.plan)
        assert f"The last run found the {kind} gone at Bria: run with --retrain" in shown
        again = engine(more, store, client, retrain=True)
        again.run()
        assert again.ctx.ids[kind] != remote_id
        assert again.summary.images == 2  # the new model made both scenes
        assert sim.stats()["calls"][TRAIN] == 2
        assert store.meta_value("gone") == ""
        # Done: the next run plans nothing, with or without --retrain.
        assert not engine(more, store, client).ctx.plan.has_work
        assert not engine(more, store, client, retrain=True).ctx.plan.has_work
    client.close()


def test_a_model_id_from_the_file_that_bria_does_not_know_says_how_to_fix_the_file(
        tmp_path: Path, sim: Simulator) -> None:
    base = pipeline(tmp_path, scenes=2, concurrency=1)
    spec = Pipeline(**{**base.__dict__, "training": Training(model_id=4001)})
    with pytest.raises(ResourceGone) as caught:
        run(tmp_path, sim, spec)
    assert str(caught.value) == (
        "model 4001 no longer exists at Bria (training.model_id in the file). Set "
        "training.model_id to a model your account has, or remove it to train one.")
    assert sim.stats()["calls"][GENERATE] == 1  # the first refusal stopped the run
