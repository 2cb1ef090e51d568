"""The hand-written script bria-run is compared with: the user's guide's flow, plainly.

One call after another with httpx: create the project and dataset, ask for the visual
schema, upload every image with a pause after each (the guide: 500 ms), complete the
dataset, create the model, start training and poll it on a fixed interval, then generate
each scene: submit, poll the job on a fixed interval, download, pause (the guide: 1 s).
A 429 is waited out (Retry-After) and retried, as the guide's error table says.

The guide generates with ``sync: true``; Bria's contract forbids that (the CDN cuts
answers at 60 s), so the script submits and polls like bria-run: the same work on the wire.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

TG = "/v1/tailored-gen"


@dataclass(frozen=True)
class BaselineSettings:
    upload_pause: float = 0.5  # the guide's pause after every upload
    generation_pause: float = 1.0  # the guide's pause after every generation
    job_poll: float = 2.0  # fixed status poll interval
    training_poll: float = 60.0  # the guide polls training every minute
    samples: int = 6  # images sent for the visual schema


@dataclass(frozen=True)
class BaselineResult:
    seconds: float
    images: int
    rate_limited: int  # 429 answers the script got


class _Api:
    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(base_url=base_url, headers={"api_token": token}, timeout=60)
        self.rate_limited = 0

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        while True:
            answer = self.http.request(method, path, json=body)
            if answer.status_code != 429:
                answer.raise_for_status()
                return answer.json() if answer.content else None
            self.rate_limited += 1
            time.sleep(float(answer.headers.get("Retry-After", "1")))


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def run_baseline(base_url: str, token: str, images: list[Path], prompts: list[str],
                 outputs: Path, settings: BaselineSettings) -> BaselineResult:
    began = time.monotonic()
    api = _Api(base_url, token)
    try:
        model_id = _train(api, images, settings)
        outputs.mkdir(parents=True, exist_ok=True)
        for n, prompt in enumerate(prompts):
            _generate(api, model_id, prompt, outputs / f"{n:05d}.png", settings)
            time.sleep(settings.generation_pause)
    finally:
        api.http.close()
    return BaselineResult(time.monotonic() - began, len(prompts), api.rate_limited)


def _train(api: _Api, images: list[Path], settings: BaselineSettings) -> int:
    project = api.call("POST", f"{TG}/projects", {
        "project_name": "baseline", "ip_type": "defined_character", "ip_medium": "illustration",
        "ip_name": "Luna", "ip_description": "girl with blue hair"})
    dataset = api.call("POST", f"{TG}/datasets", {"project_id": project["id"], "name": "baseline"})
    schema = api.call("POST", f"{TG}/generate_visual_schema",
                      {"images": [_b64(p) for p in images[: settings.samples]]})
    api.call("PUT", f"{TG}/datasets/{dataset['id']}", {"visual_schema": schema["visual_schema"]})
    for n, path in enumerate(images):
        api.call("POST", f"{TG}/datasets/{dataset['id']}/images",
                 {"file": _b64(path), "image_name": f"{n:04d}-{path.name}"})
        time.sleep(settings.upload_pause)
    api.call("PUT", f"{TG}/datasets/{dataset['id']}", {"status": "completed"})
    model = api.call("POST", f"{TG}/models", {
        "name": "baseline", "dataset_id": dataset["id"], "training_mode": "fully_automated"})
    api.call("POST", f"{TG}/models/{model['id']}/start_training", {})
    while True:
        status = api.call("GET", f"{TG}/models/{model['id']}")["status"]
        if status == "Completed":
            return int(model["id"])
        if status in ("Failed", "Stopped"):
            raise RuntimeError(f"baseline training ended {status}")
        time.sleep(settings.training_poll)


def _generate(api: _Api, model_id: int, prompt: str, out: Path,
              settings: BaselineSettings) -> None:
    job = api.call("POST", "/v2/image/generate/tailored",
                   {"tailored_model_id": str(model_id), "prompt": prompt, "sync": False})
    while True:
        time.sleep(settings.job_poll)
        status = api.call("GET", f"/v2/status/{job['request_id']}")
        if status["status"] == "COMPLETED":
            break
        if status["status"] != "IN_PROGRESS":
            raise RuntimeError(f"baseline job ended {status['status']}")
    image = api.http.get(status["result"]["image_url"])
    image.raise_for_status()
    out.write_bytes(image.content)
