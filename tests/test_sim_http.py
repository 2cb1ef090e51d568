"""The simulator over real HTTP on loopback, with plain httpx (not bria-run's client)."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from PIL import Image

from runner.simulator import SimConfig, Simulator

TG = "/v1/tailored-gen"
TOKEN = {"api_token": "sim-token"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 5_000_000.0

    def __call__(self) -> float:
        return self.now


def png_b64(width: int = 300, height: int = 300) -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(SimConfig(clock=FakeClock())) as running:
        yield running


@pytest.fixture
def http(sim: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, headers=TOKEN, timeout=10) as client:
        yield client


def new_dataset(http: httpx.Client) -> int:
    project = http.post(f"{TG}/projects", json={
        "project_name": "p", "ip_type": "other", "ip_medium": "photography"}).json()
    return int(http.post(f"{TG}/datasets", json={"project_id": project["id"], "name": "d"})
               .json()["id"])


@pytest.mark.parametrize(
    ("path", "body_check"),
    [(f"{TG}/projects", lambda b: b == {"message": "Unauthorized"}),
     ("/v2/status/abc", lambda b: b["error"]["code"] == 401 and "request_id" in b)],
    ids=["v1", "v2"],
)
def test_wrong_token_is_401(sim: Simulator, path: str, body_check: Any) -> None:
    answer = httpx.get(sim.base_url + path, headers={"api_token": "wrong"})
    assert answer.status_code == 401 and body_check(answer.json())
    assert httpx.get(sim.base_url + path).status_code == 401


@pytest.mark.parametrize("path", [f"{TG}/projects/999", f"{TG}/datasets/7", f"{TG}/models/abc",
                                  "/v1/nothing"], ids=["project", "dataset", "non-int", "path"])
def test_unknown_is_404(http: httpx.Client, path: str) -> None:
    assert http.get(path).status_code == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"file": base64.b64encode(b"\x89PNG" + b"\0" * (12 * 1024 * 1024)).decode()}, 413),
        ({"file": base64.b64encode(b"GIF89a not accepted").decode()}, 415),
        ({"file": png_b64(200, 400)}, 412),
        ({"file": png_b64(512, 512), "increase_resolution": False}, 412),
        ({"image_name": "x.png"}, 400),
        ({"image_url": "https://images.invalid/a.png"}, 460),
    ],
    ids=["too-large", "gif", "below-256", "below-1024-strict", "no-file", "url-unreachable"],
)
def test_upload_errors(http: httpx.Client, body: dict[str, Any], status: int) -> None:
    answer = http.post(f"{TG}/datasets/{new_dataset(http)}/images", json=body)
    assert answer.status_code == status
    assert answer.json()["message"] if status != 400 else answer.json()["errors"]


def test_upload_answer_has_bria_fields(http: httpx.Client) -> None:
    answer = http.post(f"{TG}/datasets/{new_dataset(http)}/images",
                       json={"file": png_b64(), "image_name": "a.png"})
    assert answer.status_code == 201
    assert {"id", "dataset_id", "image_name", "caption", "caption_source", "image_url",
            "thumbnail_url"} <= set(answer.json())
    assert http.get(answer.json()["thumbnail_url"]).headers["content-type"] == "image/png"


def test_dataset_caps_at_200_images(http: httpx.Client) -> None:
    dataset_id, image = new_dataset(http), png_b64(256, 256)
    codes = [http.post(f"{TG}/datasets/{dataset_id}/images", json={"file": image}).status_code
             for _ in range(201)]
    assert codes == [201] * 200 + [409]
    assert len(http.get(f"{TG}/datasets/{dataset_id}").json()["images"]) == 200


def test_rate_limit_answers_429_with_retry_after(sim: Simulator, http: httpx.Client) -> None:
    sim.configure(rpm=3, rate_window=30.0)
    codes = [http.get(f"{TG}/projects").status_code for _ in range(4)]
    refused = http.get(f"{TG}/projects")
    assert codes == [200, 200, 200, 429] and refused.headers["Retry-After"] == "30"
    assert refused.json()["message"]
    assert http.get("/v2/status/x").status_code == 404  # another endpoint, its own window
    sim.config.clock.now += 30  # type: ignore[attr-defined]
    assert http.get(f"{TG}/projects").status_code == 200
    stats = sim.stats()
    assert stats["rate_limited"] == 2 and stats["calls"][f"GET {TG}/projects"] == 6


def test_serves_64_concurrent_requests(sim: Simulator) -> None:
    sim.configure(latency=0.3)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    with httpx.Client(base_url=sim.base_url, headers=TOKEN, timeout=20, limits=limits) as http:

        def one(_: int) -> int:
            return http.get(f"{TG}/projects").status_code

        with ThreadPoolExecutor(64) as pool:
            codes = list(pool.map(one, range(64)))
    assert codes == [200] * 64


PROJECT = {"project_name": "p", "ip_type": "other", "ip_medium": "photography"}


def test_fail_rate_answers_bria_s_5xx_before_the_work_and_a_gateway_s_504_after(
    sim: Simulator, http: httpx.Client
) -> None:
    sim.configure(fail_rate=1.0)
    codes = [http.post(f"{TG}/projects", json=PROJECT).status_code for _ in range(24)]
    assert set(codes) == {500, 502, 503, 504}
    assert sim.stats()["created"]["projects"] == codes.count(504)  # the gateway gave up waiting
    by_status = sim.stats()["fault_routes"]["POST /v1/tailored-gen/projects"]
    assert sum(by_status.values()) == 24 and by_status["504"] == codes.count(504)


@pytest.mark.parametrize(("before", "made"), [(1.0, 0), (0.0, 1)], ids=["before", "after"])
def test_a_drop_falls_before_or_after_the_work(
    sim: Simulator, http: httpx.Client, before: float, made: int
) -> None:
    sim.configure(drop_rate=1.0, drop_before=before)
    with pytest.raises(httpx.TransportError):
        http.post(f"{TG}/projects", json=PROJECT)
    stats = sim.stats()
    assert stats["created"]["projects"] == made
    side = "before" if made == 0 else "after"
    assert stats["fault_routes"] == {"POST /v1/tailored-gen/projects": {f"drop_{side}": 1}}


def test_refuse_closes_the_connection_and_refuses_new_ones_for_a_while(
    sim: Simulator, http: httpx.Client
) -> None:
    sim.configure(refuse_rate=1.0, refuse_seconds=0.5)
    answer = http.get(f"{TG}/projects")
    assert answer.status_code == 200 and answer.headers["Connection"] == "close"
    with pytest.raises(httpx.ConnectError):
        http.get(f"{TG}/projects")
    sim.configure(refuse_rate=0.0)
    deadline = time.monotonic() + 5
    while True:  # listening again after refuse_seconds, on the same port
        try:
            assert http.get(f"{TG}/projects").status_code == 200
            break
        except httpx.ConnectError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert sim.stats()["faults"]["refuse"] == 1


def _fates(seed: int, order: list[str]) -> dict[str, int]:
    with Simulator(SimConfig(fail_rate=0.5, seed=seed)) as running, httpx.Client(
        base_url=running.base_url, headers=TOKEN
    ) as http:
        return {path: http.get(path).status_code for path in order}


def test_each_request_meets_the_same_fault_whatever_the_order() -> None:
    paths = [f"/v2/status/{n}" for n in range(24)]
    assert _fates(3, paths) == _fates(3, paths[::-1])
    assert _fates(3, paths) != _fates(4, paths)


def test_storm_answers_429(sim: Simulator, http: httpx.Client) -> None:
    sim.configure(storm_rate=1.0)
    answer = http.get("/v2/status/x")
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"
    assert answer.json()["error"]["code"] == 429


def test_drop_rate_cuts_the_answer(sim: Simulator, http: httpx.Client) -> None:
    sim.configure(drop_rate=1.0)
    with pytest.raises(httpx.TransportError):
        http.get(f"{TG}/projects")


def test_lost_answer_still_creates(sim: Simulator, http: httpx.Client) -> None:
    sim.configure(lost_answer_rate=1.0)
    with pytest.raises(httpx.TransportError):
        http.post(f"{TG}/projects", json={"project_name": "p", "ip_type": "other",
                                          "ip_medium": "photography"})
    assert [p["project_name"] for p in http.get(f"{TG}/projects").json()] == ["p"]


def fault_pattern(seed: int) -> list[int]:
    with Simulator(SimConfig(fail_rate=0.5, seed=seed)) as running, httpx.Client(
        base_url=running.base_url, headers=TOKEN
    ) as http:
        return [http.get("/v2/status/x").status_code for _ in range(16)]


def test_faults_replay_with_the_same_seed() -> None:
    assert fault_pattern(3) == fault_pattern(3)
    assert fault_pattern(3) != fault_pattern(4)


def test_stats_count_calls_and_duplicates(sim: Simulator, http: httpx.Client) -> None:
    body = {"project_name": "same", "ip_type": "other", "ip_medium": "photography"}
    http.post(f"{TG}/projects", json=body)
    http.post(f"{TG}/projects", json=body)
    http.get(f"{TG}/projects/1")
    stats = httpx.get(sim.base_url + "/__sim/stats").json()
    assert stats["calls"] == {f"POST {TG}/projects": 2, f"GET {TG}/projects/{{id}}": 1}
    assert stats["created"]["projects"] == 2 and stats["duplicates"]["projects"] == 1
    assert stats["world_id"] == sim.world_id


def test_config_endpoint_changes_settings(sim: Simulator) -> None:
    answer = httpx.post(sim.base_url + "/__sim/config", json={"rpm": 5})
    assert answer.status_code == 200 and sim.config.rpm == 5 and "token" not in answer.json()
    assert httpx.post(sim.base_url + "/__sim/config", json={"nope": 1}).status_code == 400


def test_invalid_json_is_400(http: httpx.Client) -> None:
    answer = http.post(f"{TG}/projects", content=b"{not json")
    assert answer.status_code == 400 and "message" in answer.json()
