"""Generated results over HTTP, persistence across restarts, and `bria-run simulate`."""

from __future__ import annotations

import base64
import hashlib
import io
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from runner.cli import main
from runner.simulator import SimConfig, Simulator
from runner.simulator.render import RenderSpec, render

TG = "/v1/tailored-gen"
TOKEN = {"api_token": "sim-token"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 7_000_000.0

    def __call__(self) -> float:
        return self.now


def character_b64(shade: int) -> str:
    image = Image.new("RGB", (300, 400), (245, 245, 245))
    ImageDraw.Draw(image).ellipse((80, 60, 220, 360), fill=(shade, 60, 200))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def scene_b64() -> str:
    out = io.BytesIO()
    Image.new("RGB", (640, 400), (20, 120, 40)).save(out, format="JPEG")
    return base64.b64encode(out.getvalue()).decode()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[Simulator]:
    config = SimConfig(clock=clock, training_seconds=50, generation_seconds=5, result_size=256)
    with Simulator(config) as running:
        yield running


@pytest.fixture
def http(sim: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, headers=TOKEN, timeout=10) as client:
        yield client


def train(http: httpx.Client, clock: FakeClock, version: str | None = None) -> int:
    project = http.post(f"{TG}/projects", json={
        "project_name": "luna", "ip_type": "defined_character", "ip_medium": "illustration",
        "ip_name": "Luna", "ip_description": "girl with blue hair"}).json()
    dataset = http.post(f"{TG}/datasets", json={"project_id": project["id"], "name": "d"}).json()
    samples = [character_b64(shade) for shade in range(0, 250, 50)]
    if version is None:
        schema = http.post(f"{TG}/generate_visual_schema", json={"images": samples}).json()
        http.put(f"{TG}/datasets/{dataset['id']}", json=schema)
    else:
        prefix = http.post(f"{TG}/generate_prefix", json={"images": samples[:2]}).json()
        http.put(f"{TG}/datasets/{dataset['id']}", json={"caption_prefix": prefix["prefix"]})
    for n, sample in enumerate(samples):
        http.post(f"{TG}/datasets/{dataset['id']}/images",
                  json={"file": sample, "image_name": f"{n}.png"})
    assert http.put(f"{TG}/datasets/{dataset['id']}", json={"status": "completed"}).is_success
    model = http.post(f"{TG}/models", json={"name": "m", "dataset_id": dataset["id"],
                                            "training_version": version}).json()
    assert http.post(f"{TG}/models/{model['id']}/start_training", json={}).status_code == 200
    clock.now += 50
    assert http.get(f"{TG}/models/{model['id']}").json()["status"] == "Completed"
    return int(model["id"])


def generate(http: httpx.Client, clock: FakeClock, body: dict[str, Any],
             path: str = "/v2/image/generate/tailored") -> dict[str, Any]:
    submitted = http.post(path, json=body)
    assert submitted.status_code == 202, submitted.text
    clock.now += 5
    answer = http.get(submitted.json()["status_url"]).json()
    assert answer["status"] == "COMPLETED"
    return dict(answer["result"])


def fetch(http: httpx.Client, url: str) -> bytes:
    answer = http.get(url)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    return answer.content


def test_text_results_are_pngs_deterministic_per_seed(http: httpx.Client,
                                                      clock: FakeClock) -> None:
    model_id = train(http, clock)
    body = {"tailored_model_id": str(model_id), "prompt": "Luna by the fire", "aspect_ratio": "16:9"}
    first = fetch(http, generate(http, clock, {**body, "seed": 1})["image_url"])
    again = fetch(http, generate(http, clock, {**body, "seed": 1})["image_url"])
    other = fetch(http, generate(http, clock, {**body, "seed": 2})["image_url"])
    assert first == again and first != other
    assert Image.open(io.BytesIO(first)).size == (256, 144)


def test_scene_reference_is_composited(http: httpx.Client, clock: FakeClock) -> None:
    model_id = train(http, clock)
    structured = generate(http, clock, {"images": [scene_b64()], "prompt": "in the woods"},
                          "/v2/structured_prompt/generate")["structured_prompt"]
    result = generate(http, clock, {"tailored_model_id": str(model_id), "seed": 4,
                                    "structured_prompt": structured})
    image = Image.open(io.BytesIO(fetch(http, result["image_url"]))).convert("RGB")
    colours: set[tuple[int, int, int]] = {c for _, c in image.getcolors(1 << 16) or []}  # type: ignore[misc]
    assert image.getpixel((0, 0)) == pytest.approx((20, 120, 40), abs=8)  # the scene
    assert any(b > 150 and g < 100 for _, g, b in colours)  # the character, cut out


def test_legacy_link_serves_ranges_after_ready(http: httpx.Client, clock: FakeClock) -> None:
    model_id = train(http, clock, version="max")
    answer = http.post(f"/v1/text-to-image/tailored/{model_id}",
                       json={"prompt": "Luna", "num_results": 1, "sync": False})
    url = answer.json()["result"][0]["urls"][0]
    assert http.get(url, headers={"Range": "bytes=0-0"}).status_code == 404
    clock.now += 5
    ranged = http.get(url, headers={"Range": "bytes=0-0"})
    assert ranged.status_code == 206 and ranged.content == b"\x89"
    assert ranged.headers["Content-Range"].startswith("bytes 0-0/")
    clock.now += 3600
    assert http.get(url).status_code == 403


def test_stats_charge_training_and_images(sim: Simulator, http: httpx.Client,
                                          clock: FakeClock) -> None:
    model_id = train(http, clock, version="light")
    http.post("/v1/reimagine", json={"prompt": "Luna", "structure_image_file": scene_b64(),
                                     "tailored_model_id": model_id, "num_results": 2})
    stats = sim.stats()
    assert stats["credits"] == 80 + 2 * 3
    assert stats["created"] == {"projects": 1, "datasets": 1, "images": 5, "models": 1,
                                "trainings_started": 1, "generation_jobs": 2}


def test_render_has_the_size_asked_and_repeats() -> None:
    spec = RenderSpec(1024, 576, 3, "p", ())
    data = render(spec)
    assert Image.open(io.BytesIO(data)).size == (1024, 576)
    assert hashlib.sha256(data).digest() == hashlib.sha256(render(spec)).digest()


def test_world_survives_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    state = tmp_path / "sim.json"
    config = SimConfig(clock=clock, training_seconds=50, persist_path=state)
    with Simulator(config) as first, httpx.Client(base_url=first.base_url, headers=TOKEN) as http:
        model_id = train(http, clock)
        world_id = first.world_id
    clock.now -= 25  # the training started 50 s ago in the saved world: rewind to mid-way
    with Simulator(SimConfig(clock=clock, training_seconds=1, persist_path=state)) as second, \
            httpx.Client(base_url=second.base_url, headers=TOKEN) as http:
        assert second.world_id == world_id
        assert http.get(f"{TG}/models/{model_id}").json()["status"] == "InProgress"
        clock.now += 25
        assert http.get(f"{TG}/models/{model_id}").json()["status"] == "Completed"
        images = http.get(f"{TG}/projects").json()
        assert [p["project_name"] for p in images] == ["luna"]
        assert second.stats()["credits"] == 80
    assert not list(tmp_path.glob(".sim.json.*"))  # no temp files left behind


def test_simulate_command_has_help() -> None:
    result = CliRunner().invoke(main, ["simulate", "--help"])
    assert result.exit_code == 0
    for option in ("--port", "--token", "--rpm", "--latency", "--training-seconds",
                   "--generation-seconds", "--fail-rate", "--state"):
        assert option in result.output


def test_simulate_command_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "runner", "simulate", "--port", "0", "--token", "tok-123",
               "--state", str(tmp_path / "world.json")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        url = lines[1].strip().removeprefix("export BRIA_API_URL=")
        assert lines[2].strip() == "export BRIA_API_TOKEN=tok-123"
        answer = httpx.get(f"{url}/v1/tailored-gen/projects", headers={"api_token": "tok-123"})
        assert answer.json() == []
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0 and "simulator stopped" in errors
