"""Hard weather, in process with injected time: the creating POSTs' long timeout, slow checks
waited for longer, outages waited out for the tolerance (and then given up), the one unproven
re-send per step and run, and the line a person reads meanwhile."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes import FakeTime
from PIL import Image
from simrun import TOKEN
from test_engine import pipeline

from runner import errors
from runner.bria import errors as api_errors
from runner.bria import result_links
from runner.bria.client import BriaClient
from runner.display.reporters import describe
from runner.engine.context import Context, RunOptions
from runner.engine.crashpoints import CrashPoints
from runner.engine.executor import Engine
from runner.engine.plan import plan
from runner.engine.remote import Remote, ensure_remote
from runner.events import EventKind
from runner.simulator import SimConfig, Simulator
from runner.state.fingerprint import sha256_file
from runner.state.rows import ApiIdentity, IntentOutcome, StepKind
from runner.state.store import Store

BASE = "http://bria.test"
PROJECT = {"project_name": "p", "ip_type": "defined_character", "ip_medium": "illustration"}


def client(handler: Callable[[httpx.Request], httpx.Response], t: FakeTime,
           **kw: Any) -> BriaClient:
    return BriaClient(BASE, TOKEN, transport=httpx.MockTransport(handler), sleep=t.sleep,
                      clock=t.clock, rand=lambda: 0.5, rpm=None, **kw)


def read_timeouts(seen: list[httpx.Request]) -> list[float]:
    return [r.extensions["timeout"]["read"] for r in seen]


def test_creating_posts_wait_past_the_cdn_cut_and_gets_keep_a_short_timeout() -> None:
    seen: list[httpx.Request] = []

    def bria(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": 1, "projects": []})

    with client(bria, FakeTime()) as api:
        api.create_project(**PROJECT)
        api.list_projects()
    assert read_timeouts(seen) == [90.0, 30.0]  # the CDN cuts at 60 s: a POST outwaits it


def test_a_check_that_timed_out_is_given_longer_on_that_endpoint() -> None:
    seen: list[httpx.Request] = []

    def slow_models(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "/models/" in request.url.path and len(seen) <= 2:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json={"id": 7, "status": "InProgress", "projects": []})

    with client(slow_models, FakeTime()) as api:
        assert api.get_model(7)["status"] == "InProgress"
        api.get_model(7)
        api.list_projects()
    assert read_timeouts(seen) == [30.0, 60.0, 90.0, 90.0, 30.0]


def test_an_outage_is_waited_out_for_the_tolerance_then_given_up() -> None:
    t, told = FakeTime(), list[tuple[str, float]]()

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with client(down, t, outage_tolerance=1800.0,
                on_outage=lambda key, s: told.append((key, s))) as api:
        began = t.now
        with pytest.raises(api_errors.NetworkError):
            api.get_model(7)
    assert t.now - began >= 1800.0
    assert max(t.sleeps) <= 300.0  # tries at most 5 minutes apart
    assert told and told[0][0] == "GET /v1/tailored-gen/models/{id}"
    assert [s for _, s in told] == sorted(s for _, s in told)  # how long it has been down


def test_without_a_tolerance_only_the_quick_retries_are_made() -> None:
    t = FakeTime()

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with client(down, t) as api, pytest.raises(api_errors.NetworkError):
        api.get_model(7)
    assert len(t.sleeps) == 3


@pytest.mark.parametrize(
    ("failure", "never_left"),
    [(httpx.ConnectError("refused"), True), (httpx.ConnectTimeout("no SYN-ACK"), True),
     (httpx.PoolTimeout("pool"), True), (httpx.ReadError("reset"), False),
     (httpx.RemoteProtocolError("closed without an answer"), False),
     (httpx.ReadTimeout("slow"), False), (httpx.WriteError("broken pipe"), False)],
    ids=["refused", "connect-timeout", "pool", "reset", "no-answer", "read-timeout", "write"],
)
def test_only_a_connection_never_made_proves_a_post_never_left(
    failure: Exception, never_left: bool
) -> None:
    def bria(request: httpx.Request) -> httpx.Response:
        raise failure

    with client(bria, FakeTime()) as api, pytest.raises(api_errors.NetworkError) as caught:
        api.create_project(**PROJECT)
    assert isinstance(caught.value, api_errors.NotSent) is never_left


def test_get_500s_are_waited_out_for_the_tolerance_like_any_outage() -> None:
    t, answers = FakeTime(), [500] * 9 + [200]

    def storm(request: httpx.Request) -> httpx.Response:
        return httpx.Response(answers.pop(0), json={"id": 7, "status": "InProgress"})

    with client(storm, t, outage_tolerance=1800.0) as api:
        assert api.get_model(7)["status"] == "InProgress"
    assert len(t.sleeps) == 9 and max(t.sleeps) <= 300.0
    answers[:] = [500] * 9
    with client(storm, FakeTime()) as api, pytest.raises(api_errors.ServerError):
        api.get_model(7)  # no tolerance: the quick retries only
    assert len(answers) == 5


def test_a_back_off_after_a_failure_is_not_told_as_a_rate_limit_wait() -> None:
    told, answers = list[tuple[str, float]](), [503, 500, 200]

    def busy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(answers.pop(0), json={"id": 7})

    with client(busy, FakeTime(), on_wait=lambda key, s: told.append((key, s))) as api:
        api.get_model(7)
    assert told == []  # "waiting 204 s for Bria's rate limit" was shown for 5xx back-offs


class _Cut(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield b"\x89PNG partial"
        raise httpx.ReadError("connection reset")


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_download_cut_midway_is_waited_out_within_the_tolerance() -> None:
    t, cuts = FakeTime(), [7]

    def cdn(request: httpx.Request) -> httpx.Response:
        if cuts[0] > 0:
            cuts[0] -= 1
            return httpx.Response(200, stream=_Cut())
        return httpx.Response(200, content=_png())

    out = io.BytesIO()
    with client(cdn, t, outage_tolerance=1800.0) as api:
        api.download("https://cdn.example/r.png", out)
    assert out.getvalue() == _png() and len(t.sleeps) == 7
    cuts[0], out = 99, io.BytesIO()
    with client(cdn, FakeTime(), outage_tolerance=1e9) as api, \
            pytest.raises(api_errors.NetworkError):
        api.download("https://cdn.example/r.png", out)
    assert 99 - cuts[0] == result_links.TRANSFERS and out.getvalue() == b""  # bounded


def test_a_link_that_serves_no_image_gets_quick_retries_whatever_the_tolerance() -> None:
    served = [0]

    def cdn(request: httpx.Request) -> httpx.Response:
        served[0] += 1
        return httpx.Response(200, content=b"<!doctype html><p>not an image</p>")

    with client(cdn, FakeTime(), outage_tolerance=1800.0) as api, \
            pytest.raises(api_errors.ResultInvalid):
        api.download("https://cdn.example/r.png", io.BytesIO())
    assert served[0] == 4


def test_a_ctrl_c_ends_the_wait_for_bria_at_once() -> None:
    t, stop = FakeTime(), threading.Event()
    stop.set()

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with client(down, t, outage_tolerance=1800.0, interrupt=stop) as api, \
            pytest.raises(errors.Interrupted):
        api.get_model(7)
    assert t.sleeps == []  # the back-off waited on the interrupt, which was already set


def test_a_post_waiting_out_an_outage_stops_on_ctrl_c(store: Store) -> None:
    t = FakeTime()
    env = remote(store, t)
    env.stop.set()
    row = store.begin_step("scene/a/1", StepKind.SCENE, "f" * 64, is_new=True)
    send = failing(api_errors.ServerError(503, "POST", "/v2/x"))
    with pytest.raises(errors.Interrupted):
        ensure_remote(env, row, "generate", send)
    assert send.calls[0] == 1  # type: ignore[attr-defined]


def test_the_outage_line() -> None:
    line = describe(EventKind.OUTAGE, None, {"seconds": 252.4, "running": "training"})
    assert line == "Bria unreachable for 4m12s, still waiting (training is not affected)"
    assert describe(EventKind.OUTAGE, None, {"seconds": 7}) == (
        "Bria unreachable for 0m07s, still waiting")


# --- ensure_remote: the one unproven re-send ------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store.open(tmp_path / "s.sqlite", ApiIdentity("real", BASE)) as opened:
        yield opened


def remote(store: Store, t: FakeTime, tolerance: float = 1800.0) -> Remote:
    return Remote(store, CrashPoints(""), threading.Event(), t.sleep, t.clock, tolerance)


def failing(*failures: api_errors.ApiError) -> Callable[[], tuple[str, dict[str, Any]]]:
    left = list(failures)
    calls = [0]

    def send() -> tuple[str, dict[str, Any]]:
        calls[0] += 1
        if left:
            raise left.pop(0)
        return "job-1", {}

    send.calls = calls  # type: ignore[attr-defined]
    return send


def lost() -> api_errors.NetworkError:
    return api_errors.NetworkError(None, "POST", "/v2/image/generate/tailored", "timed out")


def test_a_lost_answer_is_sent_again_once_then_the_step_stops(store: Store) -> None:
    t, env = FakeTime(), None
    env = remote(store, t)
    row = store.begin_step("scene/a/1", StepKind.SCENE, "f" * 64, is_new=True)
    send = failing(lost(), lost(), lost())
    with pytest.raises(api_errors.PaidJobMayExist) as caught:
        ensure_remote(env, row, "generate", send)
    assert send.calls[0] == 2  # type: ignore[attr-defined]
    assert len(t.sleeps) == 1  # a back-off before the one re-send
    assert "A paid job may exist at Bria" in str(caught.value)
    assert "nothing more will be sent" in str(caught.value)
    outcomes = [i.outcome for i in store.intents_of(row.id)]
    assert outcomes == [IntentOutcome.UNANSWERED, IntentOutcome.UNANSWERED]


def test_one_resend_per_step_and_run_even_across_tries(store: Store) -> None:
    t = FakeTime()
    env = remote(store, t)
    row = store.begin_step("scene/a/1", StepKind.SCENE, "f" * 64, is_new=True)
    assert ensure_remote(env, row, "generate", failing(lost()))[0] == "job-1"  # re-send spent
    store.resolve_intent(store.record_intent(row.id, "generate"), IntentOutcome.UNANSWERED)
    with pytest.raises(api_errors.PaidJobMayExist):
        ensure_remote(env, row, "generate", failing())  # a second unproven re-send: refused


def never_left() -> api_errors.NotSent:
    return api_errors.NotSent(None, "POST", "/v2/image/generate/tailored", "refused")


def test_a_post_that_never_left_is_sent_again_without_spending_the_resend(store: Store) -> None:
    t = FakeTime()
    env = remote(store, t)
    row = store.begin_step("scene/a/1", StepKind.SCENE, "f" * 64, is_new=True)
    send = failing(never_left(), never_left(), never_left(), lost(), never_left())
    assert ensure_remote(env, row, "generate", send)[0] == "job-1"
    assert send.calls[0] == 6  # type: ignore[attr-defined]
    outcomes = [i.outcome for i in store.intents_of(row.id)]
    assert outcomes == [IntentOutcome.REJECTED] * 3 + [IntentOutcome.UNANSWERED,
                                                        IntentOutcome.REJECTED,
                                                        IntentOutcome.LANDED]


def test_refusals_between_two_lost_answers_do_not_reset_the_bound(store: Store) -> None:
    t = FakeTime()
    env = remote(store, t)
    row = store.begin_step("scene/a/1", StepKind.SCENE, "f" * 64, is_new=True)
    gateway = api_errors.ServerError(504, "POST", "/v2/image/generate/tailored", "timeout")
    send = failing(lost(), never_left(), gateway, lost())
    with pytest.raises(api_errors.PaidJobMayExist) as caught:
        ensure_remote(env, row, "generate", send)
    assert send.calls[0] == 3  # type: ignore[attr-defined]
    assert "HTTP 504 from a gateway" in str(caught.value)


def test_a_request_that_makes_nothing_paid_is_sent_again_past_two_losses(store: Store) -> None:
    t = FakeTime()
    env = remote(store, t)
    row = store.begin_step("identity", StepKind.IDENTITY, "f" * 64, is_new=True)
    send = failing(lost(), lost(), lost())
    assert ensure_remote(env, row, "generate_visual_schema", send, is_paid=False)[0] == "job-1"
    assert send.calls[0] == 4  # type: ignore[attr-defined]


def test_bria_saying_it_failed_is_retried_without_spending_the_resend(store: Store) -> None:
    t = FakeTime()
    env = remote(store, t)
    row = store.begin_step("scene/a/1", StepKind.SCENE, "f" * 64, is_new=True)
    busy = [api_errors.ServerError(503, "POST", "/v2/x"), api_errors.ServerError(500, "POST", "/v2/x"),
            api_errors.RateLimited(429, "POST", "/v2/x", retry_after=3.0)]
    send = failing(*busy, lost())
    assert ensure_remote(env, row, "generate", send)[0] == "job-1"
    assert send.calls[0] == 5  # type: ignore[attr-defined]
    assert len(t.sleeps) == 3  # 503, 500 and the loss; a 429 is waited out in the limiter


def test_posts_that_keep_failing_are_given_up_after_the_tolerance(store: Store) -> None:
    t = FakeTime()
    env = remote(store, t, tolerance=600.0)
    row = store.begin_step("scene/a/1", StepKind.SCENE, "f" * 64, is_new=True)
    began = t.now
    with pytest.raises(api_errors.ServerError):
        ensure_remote(env, row, "generate", failing(*[api_errors.ServerError(503, "POST", "/x")] * 99))
    assert t.now - began >= 600.0


# --- the engine: a training outlives an outage of its status checks --------------------------


class Flaky(httpx.HTTPTransport):
    """The real simulator, but its model checks fail ``outage`` times in a row."""

    def __init__(self, outage: int) -> None:
        super().__init__()
        self.outage = outage

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and "/models/" in request.url.path and self.outage > 0:
            self.outage -= 1
            raise httpx.ConnectError("refused", request=request)
        return super().handle_request(request)


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[EventKind, dict[str, Any]]] = []

    def emit(self, event: EventKind, key: str | None = None, **data: Any) -> None:
        self.seen.append((event, data))

    def close(self) -> None:
        pass


def test_a_training_is_not_abandoned_during_an_outage_of_its_checks(tmp_path: Path) -> None:
    t, events = FakeTime(), Events()
    spec = pipeline(tmp_path)
    hashes = {p: sha256_file(p) for p in spec.character.images}
    with Simulator(SimConfig(token=TOKEN, training_seconds=0.5, generation_seconds=0.1)) as sim, \
            Store.open(tmp_path / "s.sqlite", ApiIdentity("real", sim.base_url)) as store, \
            BriaClient(sim.base_url, TOKEN, rpm=None, transport=Flaky(outage=12),
                       sleep=t.sleep, clock=t.clock, rand=lambda: 0.5, outage_tolerance=1800,
                       on_outage=lambda key, s: events.emit(EventKind.OUTAGE, endpoint=key,
                                                            seconds=s)) as api:
        ctx = Context(spec, plan(spec, store.load(), hashes), store, api, events,
                      RunOptions(job_poll=0.05), hashes=hashes, pause=t.sleep, clock=t.clock)
        summary = Engine(ctx).run()
    assert summary.images == 1
    waits = [d["seconds"] for kind, d in events.seen if kind == EventKind.OUTAGE]
    assert waits and max(waits) > 600  # a long outage by the injected clock, waited out
    assert sim.stats()["created"]["trainings_started"] == 1


def test_a_ctrl_c_during_a_back_off_says_how_to_resume(tmp_path: Path) -> None:
    """Interrupted while the training's checks wait out an outage: the run stops at once, and
    says the command that continues it, as every other interrupt does."""
    events, stop = Events(), threading.Event()
    spec = pipeline(tmp_path)
    hashes = {p: sha256_file(p) for p in spec.character.images}
    with Simulator(SimConfig(token=TOKEN, training_seconds=0.5, generation_seconds=0.1)) as sim, \
            Store.open(tmp_path / "s.sqlite", ApiIdentity("real", sim.base_url)) as store, \
            BriaClient(sim.base_url, TOKEN, rpm=None, transport=Flaky(outage=10**6),
                       rand=lambda: 0.0, outage_tolerance=1800, interrupt=stop,
                       on_outage=lambda key, s: stop.set()) as api:
        options = RunOptions(job_poll=0.05, resume_command="bria-run run luna.yaml")
        ctx = Context(spec, plan(spec, store.load(), hashes), store, api, events, options,
                      hashes=hashes, stop=stop)
        with pytest.raises(errors.Interrupted) as caught:
            Engine(ctx).run()
    assert str(caught.value).endswith("Resume with: bria-run run luna.yaml")
    assert EventKind.INTERRUPTED in [kind for kind, _ in events.seen]
