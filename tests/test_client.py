"""The Bria client over an in-process transport: errors, retries, headers, secrecy, jobs."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes import FakeTime

import runner
from runner import errors
from runner.bria import errors as api_errors
from runner.bria.answers import JobStatus
from runner.bria.client import BriaClient
from runner.bria.env import DEFAULT_BASE_URL
from runner.bria.jobs import poll_until_done

TOKEN = "sekret-token-4242"
BASE = "http://bria.test"
Handler = Callable[[httpx.Request], httpx.Response]




class Recorder:
    """A scripted Bria: answers in order (the last one repeats); records every request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def body(self, n: int = -1) -> Any:
        return json.loads(self.requests[n].content)


def make_client(handler: Handler, t: FakeTime | None = None, **kw: Any) -> BriaClient:
    t = t or FakeTime()
    return BriaClient(
        BASE,
        TOKEN,
        transport=httpx.MockTransport(handler),
        sleep=t.sleep,
        clock=t.clock,
        rand=lambda: 0.5,
        **kw,
    )


def ok(body: Any = None, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body if body is not None else {}, headers=headers)


# --- typed errors -------------------------------------------------------------------------

ERROR_CASES = [
    (
        "400-errors",
        400,
        {
            "errors": [
                {"msg": "must be 1-3 words", "field_name": "ip_name", "field_input": "a b c d"}
            ]
        },
        api_errors.BadRequest,
        "ip_name: must be 1-3 words",
    ),
    ("400-message", 400, {"message": "Invalid ip_medium"}, api_errors.BadRequest, "Invalid ip_medium"),
    ("401", 401, {"message": "Unauthorized"}, api_errors.Unauthorized, "Unauthorized"),
    (
        "403-quota",
        403,
        "Quota exceeded for this organization",
        api_errors.Forbidden,
        "Quota exceeded for this organization",
    ),
    (
        "403-access",
        403,
        "Model does not belong to your organization",
        api_errors.Forbidden,
        "Model does not belong to your organization",
    ),
    ("404", 404, {"message": "Project not found"}, api_errors.NotFound, "Project not found"),
    ("409", 409, {"message": "Dataset is completed"}, api_errors.Conflict, "Dataset is completed"),
    (
        "412",
        412,
        {"message": "Image resolution too low"},
        api_errors.PreconditionFailed,
        "Image resolution too low",
    ),
    (
        "413",
        413,
        {"message": "Image larger than 12MB"},
        api_errors.PayloadTooLarge,
        "Image larger than 12MB",
    ),
    (
        "415",
        415,
        {"message": "Unsupported format"},
        api_errors.UnsupportedMediaType,
        "Unsupported format",
    ),
    (
        "422-v2-envelope",
        422,
        {
            "error": {"code": 422, "message": "Prompt failed moderation", "details": ""},
            "request_id": "r1",
        },
        api_errors.Unprocessable,
        "Prompt failed moderation",
    ),
    (
        "460",
        460,
        {"message": "Could not download image"},
        api_errors.UrlDownloadFailed,
        "Could not download image",
    ),
    ("500", 500, {"message": "Internal error"}, api_errors.ServerError, "Internal error"),
    ("506", 506, "", api_errors.ServerError, ""),
]


@pytest.mark.parametrize(
    ("status", "body", "cls", "message"),
    [c[1:] for c in ERROR_CASES],
    ids=[c[0] for c in ERROR_CASES],
)
def test_each_error_status_raises_its_typed_error(
    status: int, body: Any, cls: type[api_errors.ApiError], message: str
) -> None:
    answer = (
        httpx.Response(status, text=body)
        if isinstance(body, str)
        else httpx.Response(status, json=body)
    )
    with make_client(Recorder(answer)) as client, pytest.raises(cls) as caught:
        client.create_dataset(project_id=7, name="luna")
    error = caught.value
    assert (error.status, error.method, error.path, error.bria_message) == (
        status,
        "POST",
        "/v1/tailored-gen/datasets",
        message,
    )
    assert str(error).startswith(f"POST /v1/tailored-gen/datasets: HTTP {status}")


def test_error_path_names_the_resource() -> None:
    recorder = Recorder(ok({"message": "Model not found"}, 404))
    with make_client(recorder) as client, pytest.raises(api_errors.NotFound) as caught:
        client.get_model(812)
    assert caught.value.path == "/v1/tailored-gen/models/812"
    assert str(caught.value) == "GET /v1/tailored-gen/models/812: HTTP 404: Model not found"


# --- retries --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "call"),
    [
        ("GET", lambda c: c.get_project(1)),
        ("PUT", lambda c: c.update_dataset(2, status="completed")),
        ("DELETE", lambda c: c.delete_model(3)),
    ],
    ids=["GET", "PUT", "DELETE"],
)
@pytest.mark.parametrize("status", [502, 503, 504], ids=lambda s: str(s))
def test_idempotent_calls_retry_with_full_jitter(method: str, call: Any, status: int) -> None:
    t = FakeTime()
    recorder = Recorder(ok({}, status), ok({}, status), ok({"id": 1}))
    with make_client(recorder, t) as client:
        call(client)
    assert [r.method for r in recorder.requests] == [method] * 3
    assert t.sleeps == [2.0, 4.0]  # rand 0.5 of 0-4 s, then of 0-8 s
    (row,) = client.stats().values()
    assert (row["requests"], row["retries"]) == (3, 2)


def test_retries_are_bounded_to_three() -> None:
    t = FakeTime()
    recorder = Recorder(ok({"message": "busy"}, 503))
    with make_client(recorder, t) as client, pytest.raises(api_errors.ServerError):
        client.list_projects()
    assert len(recorder.requests) == 4
    assert t.sleeps == [2.0, 4.0, 8.0]


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("cut")],
    ids=["connect", "timeout", "dropped"],
)
def test_network_failures_are_retried_for_get(failure: Exception) -> None:
    t = FakeTime()
    recorder = Recorder(failure, ok([{"id": 1}]))
    with make_client(recorder, t) as client:
        assert client.list_projects() == [{"id": 1}]
    assert t.sleeps == [2.0]


@pytest.mark.parametrize(
    "answer",
    [ok({}, 503), ok({}, 502), ok({}, 429), httpx.ReadTimeout("slow"), httpx.ConnectError("x")],
    ids=["503", "502", "429", "timeout", "connect"],
)
def test_a_post_is_never_retried(answer: Any) -> None:
    t = FakeTime()
    recorder = Recorder(answer, ok({"id": 5}, 201))
    with make_client(recorder, t) as client, pytest.raises(api_errors.ApiError) as caught:
        client.create_project(
            project_name="p", ip_type="defined_character", ip_medium="illustration"
        )
    assert len(recorder.requests) == 1
    assert t.sleeps == []
    if isinstance(answer, Exception):
        assert isinstance(caught.value, api_errors.NetworkError) and caught.value.status is None


def test_timeout_message_says_so() -> None:
    with (
        make_client(Recorder(httpx.ReadTimeout("slow"))) as client,
        pytest.raises(api_errors.NetworkError) as caught,
    ):
        client.create_dataset(project_id=1, name="d")
    assert str(caught.value) == (
        "POST /v1/tailored-gen/datasets: no answer: timed out (ReadTimeout: slow). Bria could "
        "not be reached. Check your network (and BRIA_API_URL), then run the same command "
        "again: every finished step is kept"
    )


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        (
            {
                "Retry-After": "Wed, 21 Oct 2026 07:28:30 GMT",
                "Date": "Wed, 21 Oct 2026 07:28:00 GMT",
            },
            30.0,
        ),
        ({}, 2.0),  # no Retry-After: back-off
    ],
    ids=["seconds", "http-date", "absent"],
)
def test_429_honours_retry_after(headers: dict[str, str], expected: float) -> None:
    t = FakeTime()
    recorder = Recorder(ok({"message": "Too many requests"}, 429, **headers), ok({"id": 9}))
    with make_client(recorder, t) as client:
        assert client.get_model(9) == {"id": 9}
    assert t.sleeps == [expected]
    row = client.stats()["GET /v1/tailored-gen/models/{id}"]
    assert (row["requests"], row["retries"], row["rate_limited"]) == (2, 1, 1)


def test_429_on_a_post_raises_and_holds_the_endpoint() -> None:
    t = FakeTime()
    recorder = Recorder(
        ok({"message": "slow down"}, 429, **{"Retry-After": "20"}), ok({"id": 1}, 201)
    )
    with make_client(recorder, t) as client:
        with pytest.raises(api_errors.RateLimited) as caught:
            client.create_dataset(project_id=1, name="d")
        assert caught.value.retry_after == 20.0
        assert t.sleeps == []
        client.create_dataset(project_id=1, name="d")  # the engine's decision to send again
    assert t.sleeps == [20.0]
    assert len(recorder.requests) == 2


def test_client_limiter_spaces_calls_per_endpoint() -> None:
    t, waits = FakeTime(), []
    recorder = Recorder(ok({"status": "IN_PROGRESS"}))
    with make_client(recorder, t, rpm=2, on_wait=lambda k, s: waits.append((k, s))) as client:
        for _ in range(3):
            client.get_status("r1")
        client.get_model(1)  # another endpoint: not held
    assert t.sleeps == [60.0]
    assert waits == [("GET /v2/status/{id}", 60.0)]


# --- headers and bodies ----------------------------------------------------------------------


def test_headers_token_and_user_agent() -> None:
    recorder = Recorder(ok([]))
    with make_client(recorder) as client:
        client.list_projects()
    request = recorder.requests[0]
    assert request.headers["api_token"] == TOKEN
    assert request.headers["User-Agent"] == f"bria-run/{runner.__version__}"
    assert "authorization" not in request.headers
    assert str(request.url) == f"{BASE}/v1/tailored-gen/projects"


def test_none_values_are_dropped_from_bodies() -> None:
    recorder = Recorder(ok({"request_id": "r", "status_url": None}, 202))
    with make_client(recorder) as client:
        client.generate_tailored(tailored_model_id=5, prompt="Luna reading", seed=None)
    assert recorder.body() == {"tailored_model_id": "5", "prompt": "Luna reading", "sync": False}
    assert recorder.requests[0].headers["Content-Type"] == "application/json"


# --- the token stays secret --------------------------------------------------------------------


def test_token_never_in_repr_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    echo = Recorder(httpx.Response(401, text=f"bad token {TOKEN}"))
    with make_client(echo) as client:
        assert TOKEN not in repr(client)
        with pytest.raises(api_errors.Unauthorized) as caught:
            client.get_project(1)
    error = caught.value
    assert TOKEN not in str(error) and TOKEN not in repr(error)
    assert error.bria_message == "bad token ***"
    assert TOKEN not in caplog.text
    assert "GET /v1/tailored-gen/projects/1 -> 401" in caplog.text


def test_token_not_in_network_error() -> None:
    with (
        make_client(Recorder(httpx.ConnectError(f"refused {TOKEN}"))) as client,
        pytest.raises(api_errors.NetworkError) as caught,
    ):
        client.create_dataset(project_id=1, name="d")
    assert TOKEN not in str(caught.value)


def test_from_env_without_token_explains_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRIA_API_TOKEN", raising=False)
    with pytest.raises(errors.ConfigError) as caught:
        BriaClient.from_env()
    assert "BRIA_API_TOKEN is not set" in str(caught.value)
    assert "--simulate" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (None, DEFAULT_BASE_URL),
        ("http://127.0.0.1:9/", "http://127.0.0.1:9"),
        ("http://127.0.0.1:9/v1", "http://127.0.0.1:9"),
    ],
    ids=["default", "trailing-slash", "with-v1"],
)
def test_from_env_base_url(monkeypatch: pytest.MonkeyPatch, url: str | None, expected: str) -> None:
    monkeypatch.setenv("BRIA_API_TOKEN", TOKEN)
    if url is None:
        monkeypatch.delenv("BRIA_API_URL", raising=False)
    else:
        monkeypatch.setenv("BRIA_API_URL", url)
    with BriaClient.from_env() as client:
        assert client.base_url == expected


# --- uploads: one file at a time ---------------------------------------------------------------


class _ChunkCounter(httpx.BaseTransport):
    """A transport that consumes the request body chunk by chunk, never joining it."""

    def __init__(self) -> None:
        self.chunk_sizes: list[int] = []
        self.content_length = 0
        self.digest = hashlib.sha256()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.content_length = int(request.headers["Content-Length"])
        for chunk in request.stream:  # type: ignore[union-attr]
            self.chunk_sizes.append(len(chunk))
            self.digest.update(chunk)
        return ok({"id": 1}, 201)


def test_uploads_stream_the_image_in_small_chunks(tmp_path: Path) -> None:
    """An 8 MB image never sits in memory whole (or four times over, as base64 JSON would):
    the body goes out in chunks of at most ~256 KB, with its exact Content-Length."""
    image = tmp_path / "big.png"
    image.write_bytes(os.urandom(8 * 1024 * 1024))
    transport = _ChunkCounter()
    with BriaClient(BASE, TOKEN, transport=transport, rpm=None) as client:
        client.upload_image(4, image, image_name="big.png")
    assert max(transport.chunk_sizes) <= 300_000
    assert sum(transport.chunk_sizes) == transport.content_length
    body = json.dumps({"file": base64.b64encode(image.read_bytes()).decode(),
                       "image_name": "big.png", "increase_resolution": True,
                       "content_moderation": False}).encode()
    assert transport.digest.hexdigest() == hashlib.sha256(body).hexdigest()


# --- v2 jobs ----------------------------------------------------------------------------------


def test_get_status_reads_status_result_and_error() -> None:
    result = {"image_url": "http://cdn/x.png", "seed": 42, "structured_prompt": "{}"}
    recorder = Recorder(ok({"status": "COMPLETED", "result": result}))
    with make_client(recorder) as client:
        assert client.get_status("req-1") == JobStatus("COMPLETED", result, None)
    assert recorder.requests[0].url.path == "/v2/status/req-1"


def test_wait_job_polls_until_completed() -> None:
    t = FakeTime()
    result = {"image_url": "http://cdn/x.png", "seed": 7}
    recorder = Recorder(
        ok({"status": "IN_PROGRESS"}),
        ok({"status": "IN_PROGRESS"}),
        ok({"status": "COMPLETED", "result": result}),
    )
    with make_client(recorder, t, rpm=None) as client:
        assert poll_until_done(lambda: client.get_status("r"), "r", pause=t.sleep,
                               interval=lambda: 3.0) == result
    assert t.sleeps == [3.0, 3.0]


@pytest.mark.parametrize(
    ("answer", "cls", "text"),
    [
        (
            ok({"status": "ERROR", "error": {"code": 500, "message": "model crashed"}}),
            api_errors.JobFailed,
            "generation failed (request r): model crashed",
        ),
        (
            ok({"status": "UNKNOWN"}),
            api_errors.JobUnknown,
            "Bria reported status UNKNOWN, a server fault (request r): UNKNOWN",
        ),
        (
            ok({"status": "NOT_FOUND"}, 404),
            api_errors.JobLost,
            "Bria no longer knows this generation job (request r): NOT_FOUND",
        ),
    ],
    ids=["ERROR", "UNKNOWN", "NOT_FOUND"],
)
def test_wait_job_failures(answer: httpx.Response, cls: type[api_errors.JobError], text: str) -> None:
    with make_client(Recorder(answer)) as client, pytest.raises(cls) as caught:
        poll_until_done(lambda: client.get_status("r"), "r", pause=lambda s: None,
                        interval=lambda: 1.0)
    assert str(caught.value) == text


def test_wait_job_times_out_with_the_request_id() -> None:
    t = FakeTime()
    with (
        make_client(Recorder(ok({"status": "IN_PROGRESS"})), t, rpm=None) as client,
        pytest.raises(api_errors.JobTimeout) as caught,
    ):
        poll_until_done(lambda: client.get_status("r9"), "r9", pause=t.sleep,
                        interval=lambda: 2.0, clock=t.clock, timeout=10.0)
    assert caught.value.request_id == "r9"
    assert sum(t.sleeps) <= 10.0


# --- result links ------------------------------------------------------------------------------


def test_wait_url_ranged_get_until_served_without_token() -> None:
    t = FakeTime()
    recorder = Recorder(ok({}, 404), ok({}, 404), httpx.Response(206, content=b"\x89"))
    with make_client(recorder, t) as client:
        client.wait_url("https://cdn.example/results/a.png?sig=abc")
    assert t.sleeps == [1.0, 1.0]
    for request in recorder.requests:
        assert request.headers["Range"] == "bytes=0-0"
        assert "api_token" not in request.headers
        assert request.url.host == "cdn.example"
    assert "<result link>" not in [k for k in client.limiter.stats()]  # not rate limited


@pytest.mark.parametrize("status", [403, 410], ids=lambda s: str(s))
def test_wait_url_expired(status: int) -> None:
    with (
        make_client(Recorder(ok({}, status))) as client,
        pytest.raises(api_errors.ResultExpired) as caught,
    ):
        client.wait_url("https://cdn.example/results/a.png?sig=abc")
    assert str(caught.value) == "result link expired before download: /results/a.png"


def _png(side: int = 8) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (10, 20, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def test_download_streams_and_hashes() -> None:
    data = _png() + bytes(range(256)) * 1000  # a PNG header, then whatever it holds
    recorder = Recorder(httpx.Response(200, content=data))
    out = io.BytesIO()
    with make_client(recorder) as client:
        digest = client.download("https://cdn.example/r.png", out)
    assert out.getvalue() == data and digest == hashlib.sha256(data).hexdigest()
    assert "api_token" not in recorder.requests[0].headers


@pytest.mark.parametrize("status", [403, 404, 410], ids=lambda s: str(s))
def test_download_of_dead_link_is_result_expired(status: int) -> None:
    with make_client(Recorder(ok({}, status))) as client, pytest.raises(api_errors.ResultExpired):
        client.download("https://cdn.example/r.png", io.BytesIO())


class _DroppingStream(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield b"partial"
        raise httpx.ReadError("connection reset")


def test_download_dropped_midway_restarts_cleanly() -> None:
    t = FakeTime()
    recorder = Recorder(
        httpx.Response(200, stream=_DroppingStream()), httpx.Response(200, content=_png())
    )
    out = io.BytesIO()
    with make_client(recorder, t) as client:
        digest = client.download("https://cdn.example/r.png", out)
    assert out.getvalue() == _png() and digest == hashlib.sha256(_png()).hexdigest()
    assert t.sleeps == [2.0]


def test_download_retries_5xx() -> None:
    t = FakeTime()
    recorder = Recorder(ok({}, 503), httpx.Response(200, content=_png()))
    with make_client(recorder, t) as client:
        client.download("https://cdn.example/r.png", io.BytesIO())
    assert len(recorder.requests) == 2


def test_503_with_retry_after_waits_that_long() -> None:
    t = FakeTime()
    recorder = Recorder(ok({}, 503, **{"Retry-After": "3"}), ok([]))
    with make_client(recorder, t) as client:
        client.list_images(4)
    assert t.sleeps == [3.0]
