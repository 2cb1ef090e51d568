"""The engine with an in-process transport: the cases that need exact control of the network."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
from simrun import TOKEN, make_image

from runner.bria.client import BriaClient
from runner.bria.errors import NetworkError
from runner.display.reporters import QuietReporter
from runner.engine.context import Context, RunOptions
from runner.engine.crashpoints import CrashPoints
from runner.engine.executor import Engine
from runner.engine.plan import plan
from runner.errors import StepCrashed
from runner.pipeline.spec import Character, Identity, Pipeline, Scene, Training
from runner.simulator import SimConfig, Simulator
from runner.state.fingerprint import sha256_file
from runner.state.rows import ApiIdentity
from runner.state.store import Store


def pipeline(folder: Path) -> Pipeline:
    images = tuple(make_image(folder / "training" / f"{i}.png", i) for i in range(5))
    return Pipeline(
        path=folder / "luna.yaml", name="luna",
        character=Character(name="Luna", type="defined_character", medium="illustration",
                            images=images, identity=Identity("auto", samples=5),
                            description="girl with blue hair"),
        training=Training(poll_every=0.2),
        scenes=(Scene(name="reading", prompt="Luna reading"),),
        outputs=folder / "outputs",
    )


def run_engine(spec: Pipeline, store: Store, client: BriaClient,
               hooks: CrashPoints | None = None) -> Engine:
    hashes = {p: sha256_file(p) for p in spec.character.images}
    ctx = Context(spec, plan(spec, store.load(), hashes), store, client, QuietReporter(),
                  RunOptions(job_poll=0.05), hashes=hashes, pause=lambda _s: None,
                  hooks=hooks or CrashPoints(""))
    engine = Engine(ctx)
    engine.run()
    return engine


def test_long_outage_ends_with_a_clear_error_and_a_resumable_state(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    spec = pipeline(tmp_path)
    identity = ApiIdentity("real", "http://bria.test")
    down = BriaClient("http://bria.test", TOKEN, transport=httpx.MockTransport(refuse),
                      sleep=lambda _s: None, rpm=None)
    with Store.open(tmp_path / "s.sqlite", identity) as store:
        with pytest.raises(NetworkError) as caught:
            run_engine(spec, store, down)
        assert "Bria could not be reached" in str(caught.value)
        assert "run the same command again" in str(caught.value)
        project = store.load().current("project")
        assert project is not None and project.status == "failed"
        # The look-up by name that comes before any create failed: nothing was sent at all.
        assert store.intents_of(project.id) == []
    with Simulator(SimConfig(token=TOKEN, training_seconds=0.3, generation_seconds=0.05)) as sim:
        identity_now = ApiIdentity("real", "http://bria.test")
        up = BriaClient(sim.base_url, TOKEN, rpm=None)
        with Store.open(tmp_path / "s.sqlite", identity_now) as store:
            engine = run_engine(spec, store, up)
        assert engine.summary.images == 1
        stats = sim.stats()
        assert stats["created"]["projects"] == 1 and stats["duplicates"]["projects"] == 0
        assert stats["calls"]["GET /v1/tailored-gen/projects"] == 1  # looked up before sending


def test_big_identity_samples_are_sent_scaled_down(tmp_path: Path) -> None:
    """generate_visual_schema carries every sample in one body: 8 MB images go as 1024 px."""
    import os

    from PIL import Image

    from runner.engine.training import _small_copy

    big = tmp_path / "big.png"
    Image.frombytes("RGB", (1600, 1600), os.urandom(1600 * 1600 * 3)).save(big)
    small = tmp_path / "small.png"
    make_image(small, 1)
    assert _small_copy(small, tmp_path / "out") == small  # small files go as they are
    (tmp_path / "out").mkdir()
    copy = _small_copy(big, tmp_path / "out")
    with Image.open(copy) as image:
        assert max(image.size) == 1024


def test_link_expired_in_the_same_run_regenerates_without_a_new_structured_prompt(
    tmp_path: Path,
) -> None:
    from dataclasses import replace
    from typing import Any, BinaryIO

    from runner.bria.answers import Job, JobStatus
    from runner.bria.errors import ResultExpired
    from tests.benchmarks.fakebria import FakeBria

    class ExpiringOnce(FakeBria):
        def __init__(self) -> None:
            super().__init__()
            self.structured, self.generated, self.expired = 0, 0, False

        def generate_structured_prompt(self, **body: Any) -> Job:
            self.structured += 1
            return Job(f"sp-{self.structured}", None)

        def get_status(self, request_id: str) -> JobStatus:
            if request_id.startswith("sp-"):
                return JobStatus("COMPLETED", {"structured_prompt": "{}"})
            return super().get_status(request_id)

        def generate_tailored(self, **body: Any) -> Job:
            self.generated += 1
            return super().generate_tailored(**body)

        def download(self, url: str, out: BinaryIO) -> str:
            if not self.expired:
                self.expired = True
                raise ResultExpired("/x.png")
            return super().download(url, out)

    base = pipeline(tmp_path)
    reference = make_image(tmp_path / "scenes" / "forest.png", 9)
    spec = replace(base, scenes=(Scene(name="forest", prompt="Luna", reference=reference),),
                   training=Training(model_id=7))
    bria = ExpiringOnce()
    hashes = {reference: sha256_file(reference)}
    with Store.open(tmp_path / "s.sqlite", ApiIdentity("real", "fake")) as store:
        ctx = Context(spec, plan(spec, store.load(), hashes), store, bria,  # type: ignore[arg-type]
                      QuietReporter(), RunOptions(job_poll=0.0), hashes=hashes,
                      pause=lambda _s: None)
        Engine(ctx).run()
    assert (bria.structured, bria.generated) == (1, 2)
    assert (tmp_path / "outputs" / "forest" / "1.png").exists()


def test_workers_left_after_the_grace_period_are_reported_by_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stop with a request that never returns: the engine waits the grace period, says how
    many it left in flight, and the error it raises carries the count (the CLI then exits at
    once instead of waiting for them)."""
    import dataclasses
    import threading

    from runner.engine.steps import STEPS, StepSpec
    from runner.errors import Interrupted
    from runner.events import EventKind
    from runner.state.rows import StepKind

    spec = dataclasses.replace(pipeline(tmp_path), training=Training(model_id=4001))
    never = threading.Event()
    seen: list[tuple[EventKind, dict[str, object]]] = []

    class Recorder(QuietReporter):
        def emit(self, event: EventKind, key: str | None = None, **data: object) -> None:
            seen.append((event, data))

    def hang(ctx: Context, *_args: object) -> tuple[str | None, dict[str, object]]:
        ctx.stop.set()  # as a Ctrl-C would, while this request is in flight
        never.wait(30)
        return None, {}

    monkeypatch.setitem(STEPS, StepKind.SCENE, StepSpec(hang, is_concurrent=True, is_fatal=False))
    client = BriaClient("http://bria.test", TOKEN, rpm=None,
                        transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    with Store.open(tmp_path / "s.sqlite", ApiIdentity("real", "http://bria.test")) as store:
        ctx = Context(spec, plan(spec, store.load(), {}), store, client, Recorder(),
                      RunOptions(grace=0.2))
        with pytest.raises(Interrupted) as caught:
            Engine(ctx).run()
    never.set()
    assert caught.value.abandoned_workers == 1
    notices = [str(d["message"]) for e, d in seen if e == EventKind.NOTICE]
    assert any("1 request(s) still in flight after the 0.2 s grace period" in n for n in notices)


@pytest.mark.parametrize("ceiling", [None, 3])
def test_auto_concurrency_runs_a_windows_worth_a_number_caps_it(tmp_path: Path,
                                                                 ceiling: int | None) -> None:
    from dataclasses import replace

    scenes = tuple(Scene(name=f"s{n}", prompt=f"Luna number {n}") for n in range(10))
    spec = replace(pipeline(tmp_path), scenes=scenes, concurrency=ceiling)
    hashes = {p: sha256_file(p) for p in spec.character.images}
    config = SimConfig(token=TOKEN, training_seconds=0.1, generation_seconds=0.3, rpm=60)
    with Simulator(config) as sim, BriaClient(sim.base_url, TOKEN, rpm=60) as client:
        with Store.open(tmp_path / "s.sqlite", ApiIdentity("real", sim.base_url)) as store:
            ctx = Context(spec, plan(spec, store.load(), hashes), store, client,
                          QuietReporter(), RunOptions(job_poll=0.05, poll_every=0.05),
                          hashes=hashes)
            engine = Engine(ctx)
            engine.run()
        stats = sim.stats()
    assert engine.summary.images == 10 and stats["rate_limited"] == 0
    # Auto: the budget (60 a minute) admits all ten at once; a number is a ceiling.
    assert engine.peaks["scene"] == (10 if ceiling is None else 3)
    assert ctx.pacer.jobs == 10


def test_a_later_training_is_looked_at_near_the_end_earlier_ones_took(tmp_path: Path) -> None:
    """One fake clock for the simulator and the engine: the first training (400 s, looked at
    every 300 s) is seen done at 600 s and recorded as 450 s (the middle of its last two
    looks); a retrain in the same state looks again at 427.5 s (0.95 x 450), not at 600 s."""
    from dataclasses import replace

    from fakes import FakeTime

    time = FakeTime()
    first = pipeline(tmp_path)
    more = (*first.character.images, make_image(tmp_path / "training" / "5.png", 5))
    config = SimConfig(token=TOKEN, training_seconds=400.0, generation_seconds=1.0,
                       clock=time.clock)
    looks = "GET /v1/tailored-gen/models/{id}"
    with Simulator(config) as sim, BriaClient(sim.base_url, TOKEN, rpm=None) as client, \
            Store.open(tmp_path / "s.sqlite", ApiIdentity("real", sim.base_url)) as store:
        seen = []
        # The second pipeline trains on one more image: a new model, retrained on purpose.
        for spec in (first, replace(first, character=replace(first.character, images=more))):
            hashes = {p: sha256_file(p) for p in spec.character.images}
            options = RunOptions(retrain=True, poll_every=300.0, job_poll=2.0)
            ctx = Context(spec, plan(spec, store.load(), hashes, retrain=True), store,
                          client, QuietReporter(), options, hashes=hashes, clock=time.clock,
                          wall=time.clock, pause=time.sleep, rand=lambda: 0.5)
            before = sim.stats()["calls"].get(looks, 0)
            Engine(ctx).run()
            seen.append(sim.stats()["calls"][looks] - before)
        trained = [r.outputs["trained_seconds"] for rows in store.load().steps.values()
                   for r in rows if r.kind == "train"]
    assert trained == [450.0, (300.0 + 427.5) / 2]
    assert seen[1] <= seen[0]


class _Recording(httpx.HTTPTransport):
    """Every request as "METHOD /path", in the order sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(f"{request.method} {request.url.path}")
        return super().handle_request(request)


def _requests(tmp_path: Path, crash_at: str = "") -> list[str]:
    """The requests of a run in a fresh state (after a run that failed at ``crash_at``, if
    given), uploads left out."""
    spec = pipeline(tmp_path)
    config = SimConfig(token=TOKEN, training_seconds=0.1, generation_seconds=0.05)
    recording = _Recording()
    with Simulator(config) as sim, \
            BriaClient(sim.base_url, TOKEN, rpm=None, transport=recording) as client, \
            Store.open(tmp_path / "s.sqlite", ApiIdentity("real", sim.base_url)) as store:
        if crash_at:
            with pytest.raises(StepCrashed):
                run_engine(spec, store, client, CrashPoints(f"{crash_at}=assert"))
            recording.sent.clear()
        run_engine(spec, store, client)
    return [s for s in recording.sent
            if not (s.startswith("POST /v1/tailored-gen/datasets/") and s.endswith("/images"))]


DATASET, MODEL = "/v1/tailored-gen/datasets/2001", "/v1/tailored-gen/models/4001"


def test_a_fresh_run_asks_bria_nothing_it_made_itself(tmp_path: Path) -> None:
    """Between the identity and the training, a fresh run lists the dataset's images once
    (never train on part of the character), completes it, creates the model and starts it:
    no look at a dataset or a model this very run created."""
    sent = _requests(tmp_path)
    start = sent.index(f"PUT {DATASET}")  # the identity
    assert sent[start + 1:start + 6] == [
        f"GET {DATASET}/images", f"PUT {DATASET}",
        "POST /v1/tailored-gen/models", f"POST {MODEL}/start_training", f"GET {MODEL}"]


def test_a_resume_asks_again_what_an_earlier_run_made(tmp_path: Path) -> None:
    """The model was created by a run that then stopped: the next run looks at the model
    (it may have been started) and lists the dataset again before it starts the training."""
    sent = _requests(tmp_path, "before_intent:start_training")
    start = sent.index(f"GET {MODEL}")
    assert sent[start:start + 4] == [f"GET {MODEL}", f"GET {DATASET}/images",
                                     f"POST {MODEL}/start_training", f"GET {MODEL}"]


class _HoldProject(_Recording):
    """Holds the project's creation until the identity's request is on its way (at most 5 s)."""

    def __init__(self) -> None:
        super().__init__()
        self.identity_sent = threading.Event()
        self.held_until_identity: bool | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/generate_visual_schema"):
            self.identity_sent.set()
        elif request.method == "POST" and request.url.path.endswith("/projects"):
            self.held_until_identity = self.identity_sent.wait(timeout=5)
        return super().handle_request(request)


def test_a_new_projects_identity_is_generated_beside_the_project_and_dataset(
        tmp_path: Path) -> None:
    """The visual schema needs only the samples: it is asked while the project and the dataset
    are created, and put on the dataset once it exists. A run that finds the project at Bria
    (a lost state) does not ask early: the dataset found may carry its identity already."""
    spec = pipeline(tmp_path)
    config = SimConfig(token=TOKEN, training_seconds=0.1, generation_seconds=0.05)
    with Simulator(config) as sim:
        for state in ("first.sqlite", "lost.sqlite"):
            holding = _HoldProject()
            with BriaClient(sim.base_url, TOKEN, rpm=None, transport=holding) as client, \
                    Store.open(tmp_path / state, ApiIdentity("real", sim.base_url)) as store:
                run_engine(spec, store, client)
            if state == "first.sqlite":
                assert holding.held_until_identity is True
                dataset = holding.sent.index("POST /v1/tailored-gen/datasets")
                put = holding.sent.index("PUT /v1/tailored-gen/datasets/2001")
                assert holding.sent.index("POST /v1/tailored-gen/generate_visual_schema") < put
                assert dataset < put
        assert sim.stats()["calls"]["POST /v1/tailored-gen/generate_visual_schema"] == 1
        assert holding.held_until_identity is None and not holding.identity_sent.is_set()


def test_an_early_identity_that_failed_is_asked_again_by_its_step(tmp_path: Path) -> None:
    class FailFirst(_Recording):
        failed = False

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/generate_visual_schema") and not self.failed:
                self.failed = True
                request.read()
                return httpx.Response(503, json={"message": "Service Unavailable"})
            return super().handle_request(request)

    config = SimConfig(token=TOKEN, training_seconds=0.1, generation_seconds=0.05)
    failing = FailFirst()
    with Simulator(config) as sim, \
            BriaClient(sim.base_url, TOKEN, rpm=None, transport=failing,
                       sleep=lambda _s: None) as client, \
            Store.open(tmp_path / "s.sqlite", ApiIdentity("real", sim.base_url)) as store:
        engine = run_engine(pipeline(tmp_path), store, client)
        assert failing.failed and engine.summary.images == 1
        assert sim.stats()["calls"]["POST /v1/tailored-gen/generate_visual_schema"] == 1


def test_a_later_run_polls_its_jobs_when_earlier_runs_jobs_were_done(tmp_path: Path) -> None:
    """One fake clock for the simulator and the engine, jobs of 10 s, one at a time: the
    first run probes (polls every 2 s) and records each job's learned duration with its
    image; a later run of new scenes in the same state starts from them and finds every
    job done at its first poll."""
    from dataclasses import replace

    from fakes import FakeTime

    time = FakeTime()
    first = replace(pipeline(tmp_path), concurrency=1,
                    scenes=tuple(Scene(name=f"a{n}", prompt=f"Luna number {n}") for n in range(3)))
    later = replace(first, scenes=tuple(Scene(name=f"b{n}", prompt=f"Luna at {n}") for n in range(3)))
    config = SimConfig(token=TOKEN, training_seconds=1.0, generation_seconds=10.0,
                       clock=time.clock)
    polls = "GET /v2/status/{id}"
    with Simulator(config) as sim, BriaClient(sim.base_url, TOKEN, rpm=None) as client, \
            Store.open(tmp_path / "s.sqlite", ApiIdentity("real", sim.base_url)) as store:
        seen, learned = [], []
        for spec in (first, later):
            hashes = {p: sha256_file(p) for p in spec.character.images}
            the_plan = plan(spec, store.load(), hashes)
            learned.append(the_plan.job_seconds)
            ctx = Context(spec, the_plan, store, client, QuietReporter(),
                          RunOptions(poll_every=1.0, job_poll=2.0), hashes=hashes,
                          clock=time.clock, wall=time.clock, pause=time.sleep, rand=lambda: 0.5)
            before = sim.stats()["calls"].get(polls, 0)
            Engine(ctx).run()
            seen.append(sim.stats()["calls"][polls] - before)
        recorded = [r.outputs["job_seconds"] for rows in store.load().steps.values()
                    for r in rows if r.kind == "scene"]
    assert learned[0] == () and len(learned[1]) == 3 and sorted(recorded[:3]) == sorted(learned[1])
    # First run: the probe polls at 2, 4, .., 10 s (learns 9 s); the next job misses at 9 s
    # and is found at 11.25 s (learns 10.125 s); the third is found at 10.125 s.
    assert seen == [8, 3] and learned[1] == (9.0, 10.125, 10.125)


def test_training_looks_are_poll_every_apart_from_sending_to_sending(tmp_path: Path) -> None:
    """Bria takes 0.5 s (fake clock) to answer each look at the model: with poll_every 2 s
    the looks still go out 2 s apart, not 2.5 s."""
    from fakes import FakeTime

    time = FakeTime()

    class Slow(_Recording):
        def __init__(self) -> None:
            super().__init__()
            self.sent_at: list[float] = []

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "GET" and "/models/" in request.url.path:
                self.sent_at.append(time.now)
                time.now += 0.5
            return super().handle_request(request)

    spec = pipeline(tmp_path)
    config = SimConfig(token=TOKEN, training_seconds=9.0, generation_seconds=1.0,
                       clock=time.clock)
    slow = Slow()
    with Simulator(config) as sim, BriaClient(sim.base_url, TOKEN, rpm=None,
                                              transport=slow) as client, \
            Store.open(tmp_path / "s.sqlite", ApiIdentity("real", sim.base_url)) as store:
        hashes = {p: sha256_file(p) for p in spec.character.images}
        ctx = Context(spec, plan(spec, store.load(), hashes), store, client, QuietReporter(),
                      RunOptions(poll_every=2.0, job_poll=1.0), hashes=hashes,
                      clock=time.clock, wall=time.clock, pause=time.sleep, rand=lambda: 0.5)
        Engine(ctx).run()
    gaps = [round(b - a, 6) for a, b in zip(slow.sent_at, slow.sent_at[1:], strict=False)]
    assert len(gaps) >= 4 and set(gaps) == {2.0}
