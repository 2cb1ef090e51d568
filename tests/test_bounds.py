"""Every answer and download bounded, and the token only for the API (issue 17, points 2, 3).

Against the simulator over real HTTP, with its test-only faults (runner/simulator/hostile.py):
a gigabyte JSON answer, an endless download, an HTML page served as a result, a result link
to the cloud metadata address, a job error that echoes the token.
"""

from __future__ import annotations

import io
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner import simulator as sim
from runner.bria import addresses
from runner.bria import errors as api_errors
from runner.bria.bounds import MAX_ANSWER_BYTES
from runner.bria.client import BriaClient
from runner.bria.result_links import ResultLimits
from runner.bria.session import Call
from tests.chain_demo import make_images, train, wait_job

TOKEN = "sim-bounds-token-77"


@pytest.fixture(scope="module")
def simulator() -> Iterator[Any]:
    config = sim.SimConfig(token=TOKEN, training_seconds=0.3, generation_seconds=0.05,
                           result_size=256)
    with sim.Simulator(config) as running:
        yield running


@pytest.fixture
def calm(simulator: Any) -> Iterator[Any]:
    yield simulator
    simulator.configure(huge_answer=0, result_fault="", result_host="", echo_token=False)


@pytest.fixture(scope="module")
def model(simulator: Any, tmp_path_factory: pytest.TempPathFactory) -> int:
    images = make_images(tmp_path_factory.mktemp("bounds") / "training")
    with BriaClient(simulator.base_url, TOKEN, rpm=None) as client:
        return train(client, images, "bounds", None, 0.05)


@pytest.fixture(scope="module")
def link(simulator: Any, model: int) -> str:
    """The result link of one finished generation."""
    with BriaClient(simulator.base_url, TOKEN, rpm=None) as client:
        job = client.generate_tailored(tailored_model_id=model, prompt="Luna", seed=1)
        return str(wait_job(client, job.request_id, 0.05)["image_url"])


def _client(simulator: Any, **kw: Any) -> BriaClient:
    return BriaClient(simulator.base_url, TOKEN, rpm=None, sleep=lambda _s: None, **kw)


def test_a_gigabyte_answer_is_a_failed_request_read_no_further_than_the_cap(calm: Any) -> None:
    calm.configure(huge_answer=1 << 30)
    with _client(calm) as client, pytest.raises(api_errors.AnswerTooLarge) as caught:
        client.get_status("any")
    assert str(caught.value).startswith(
        "GET /v2/status/any: HTTP 200: the answer is larger than 4 MB, the most bria-run reads")
    assert caught.value.body is None  # nothing of it is kept
    assert isinstance(caught.value, api_errors.ServerError)  # a POST's outcome: unknown, reconciled


def test_an_answer_under_the_cap_is_read_whole(calm: Any) -> None:
    calm.configure(huge_answer=MAX_ANSWER_BYTES - 1)
    with _client(calm) as client:
        assert client.get_status("any").status == "IN_PROGRESS"


def test_an_endless_download_stops_at_the_size_cap_and_is_retried(calm: Any, link: str) -> None:
    calm.configure(result_fault="endless")
    before = calm.links["GET /__sim/results/{id}"]
    out = io.BytesIO()
    with _client(calm, result_limits=ResultLimits(max_bytes=1 << 20)) as client, \
            pytest.raises(api_errors.ResultInvalid) as caught:
        client.download(link, out)
    assert "larger than 1 MB, the most bria-run downloads for one image" in str(caught.value)
    assert calm.links["GET /__sim/results/{id}"] - before == 4  # the first try + 3 retries
    assert out.getvalue() == b""  # rewound: nothing of it is left for the caller to keep


def test_a_download_has_a_total_time_limit(calm: Any, link: str) -> None:
    calm.configure(result_fault="endless")
    # No size cap in reach: on a slow machine 64 MB can arrive before 0.2 s have passed.
    with _client(calm, result_limits=ResultLimits(max_bytes=2**40, seconds=0.2)) as client, \
            pytest.raises(api_errors.ResultInvalid, match=r"not finished after 0.2 s"):
        client.download(link, io.BytesIO())


def test_an_html_page_served_as_a_result_is_a_failed_download(calm: Any, link: str) -> None:
    calm.configure(result_fault="html")
    with _client(calm) as client, pytest.raises(api_errors.ResultInvalid) as caught:
        client.download(link, io.BytesIO())
    assert caught.value.reason == ("not a PNG, JPEG or WEBP image (it begins `<!doctype html>"
                                   "<html><head><title>Sign i`)")


def test_a_real_result_passes_the_checks(calm: Any, link: str) -> None:
    out = io.BytesIO()
    with _client(calm) as client:
        client.download(link, out)
    assert out.getvalue().startswith(b"\x89PNG")


def test_a_link_to_the_metadata_address_is_refused_unfetched(calm: Any, link: str) -> None:
    calm.configure(result_host="169.254.169.254")
    with _client(calm) as client:
        request_id = link.rsplit("/", 1)[1].removesuffix(".png")
        url = client.get_status(request_id).result["image_url"]  # type: ignore[index]
        assert url.startswith("http://169.254.169.254/")
        with pytest.raises(api_errors.ResultRefused) as caught:
            client.download(url, io.BytesIO())
        with pytest.raises(api_errors.ResultRefused):
            client.wait_url(url)
    assert caught.value.host == "169.254.169.254"
    assert "link-local address" in str(caught.value)
    assert "<result link>" not in client.stats()  # not one request was sent


@pytest.mark.parametrize(("address", "api", "refused"), [
    ("169.254.169.254", "93.184.216.34", True),
    ("fe80::1", "93.184.216.34", True),
    ("::ffff:169.254.169.254", "127.0.0.1", True),
    ("224.0.0.1", "127.0.0.1", True),
    ("ff02::1", "127.0.0.1", True),
    ("0.0.0.0", "127.0.0.1", True),
    ("::", "127.0.0.1", True),
    ("127.0.0.1", "93.184.216.34", True),
    ("10.1.2.3", "93.184.216.34", True),
    ("127.0.0.1", "127.0.0.1", False),
    ("10.1.2.3", "192.168.1.5", False),
    ("93.184.216.7", "93.184.216.34", False),
], ids=lambda v: str(v))
def test_which_addresses_a_result_link_may_use(address: str, api: str, refused: bool) -> None:
    host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    found = addresses.refusal(f"https://{host}/r.png", api)
    assert (found is not None) == refused, found


def test_a_link_that_is_not_http_is_refused() -> None:
    assert addresses.refusal("file:///etc/passwd", "127.0.0.1") is not None


def _recording_client() -> tuple[BriaClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    return BriaClient("https://api.bria.test", TOKEN, rpm=None,
                      transport=httpx.MockTransport(handler)), seen


@pytest.mark.parametrize(("path", "has_token"), [
    ("/v2/status/1", True),
    ("https://api.bria.test/v2/status/1", True),
    ("https://API.bria.test/v2/status/1", True),
    ("https://elsewhere.test/v2/status/1", False),
    ("http://api.bria.test/v2/status/1", False),  # the scheme is part of the origin
    ("https://api.bria.test:8443/v2/status/1", False),
], ids=["relative", "same-origin", "same-origin-case", "other-host", "other-scheme",
        "other-port"])
def test_the_token_goes_only_to_the_api_roots_host(path: str, has_token: bool) -> None:
    client, seen = _recording_client()
    with client:
        client._session.send(Call("GET", "/v2/status/{id}", path))
    assert ("api_token" in seen[0].headers) is has_token


def test_result_links_never_carry_the_token() -> None:
    client, seen = _recording_client()
    with client, pytest.raises(api_errors.ResultInvalid):
        client.download("https://api.bria.test/results/r.png", io.BytesIO())  # even same host
    assert seen and all("api_token" not in r.headers for r in seen)


def test_a_job_error_that_echoes_the_token_is_redacted(calm: Any, model: int) -> None:
    calm.configure(echo_token=True)
    with BriaClient(calm.base_url, TOKEN, rpm=None) as client:
        job = client.generate_tailored(tailored_model_id=model, prompt="sim-error here")
        with pytest.raises(api_errors.JobFailed) as caught:
            wait_job(client, job.request_id, 0.05)
        with pytest.raises(api_errors.Forbidden) as refused:  # an error answer, too
            client.generate_tailored(tailored_model_id=999999, prompt="Luna")
    for error in (caught.value, refused.value):
        assert TOKEN not in str(error) and TOKEN not in repr(getattr(error, "body", ""))
    assert "(api_token *** has no access to this model)" in str(caught.value)


def test_the_simulators_hostile_bodies_are_streamed(tmp_path: Path, calm: Any) -> None:
    """The simulator never holds a huge answer: it writes it as it goes (so the benchmarks
    measure bria-run, not the simulator)."""
    calm.configure(huge_answer=64 << 20)
    with httpx.stream("GET", f"{calm.base_url}/v2/status/x", headers={"api_token": TOKEN},
                      timeout=30) as answer:
        assert answer.headers["Content-Length"] == str(64 << 20)
        total = sum(len(chunk) for chunk in answer.iter_bytes())
    assert total == 64 << 20
