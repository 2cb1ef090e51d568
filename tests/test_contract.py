"""The contract with Bria, in bria-run's own words: what the client sends and what it reads.

Each case pins one endpoint: method, path, the exact JSON body (field names, Bria's
spellings, nothing null), and how the answer Bria documents is read back. If Bria's
contract changes, these are the tests that must change with it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.bria import answers as bria
from runner.bria.answers import Job, JobStatus
from runner.bria.client import BriaClient
from runner.bria.errors import ApiError

TOKEN = "contract-token"


class Bria:
    """Answers every request with one canned answer and keeps the request."""

    def __init__(self, status: int, body: Any) -> None:
        self.status, self.body = status, body
        self.request: httpx.Request | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.request = request
        if self.body is None:
            return httpx.Response(self.status)
        return httpx.Response(self.status, json=self.body)

    def sent(self) -> tuple[str, str, Any]:
        assert self.request is not None
        content = self.request.read()
        return self.request.method, self.request.url.path, json.loads(content) if content else None


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    paths = []
    for n in range(5):
        paths.append(tmp_path / f"i{n}.png")
        paths[-1].write_bytes(f"image-{n}".encode())
    return paths


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


Case = tuple[str, Callable[[BriaClient, list[Path]], Any], int, Any, str, str, Any, Any]


def _prefix(client: Any, images: list[Any]) -> Any:
    return client.generate_prefix(images[:2], ip_type="defined_character",
                                  ip_medium="illustration", ip_name="Luna")


CASES: list[Case] = [
    (
        "create_project",
        lambda c, i: c.create_project(
            project_name="luna",
            ip_type="defined_character",
            ip_medium="illustration",
            ip_name="Luna",
            ip_description="girl with blue hair",
        ),
        201,
        {"id": 11, "project_name": "luna", "status": "active"},
        "POST",
        "/v1/tailored-gen/projects",
        {
            "project_name": "luna",
            "ip_type": "defined_character",
            "ip_medium": "illustration",
            "ip_name": "Luna",
            "ip_description": "girl with blue hair",
        },
        {"id": 11, "project_name": "luna", "status": "active"},
    ),
    (
        "list_projects",
        lambda c, i: c.list_projects(),
        200,
        [{"id": 11}],
        "GET",
        "/v1/tailored-gen/projects",
        None,
        [{"id": 11}],
    ),
    (
        "get_project",
        lambda c, i: c.get_project(11),
        200,
        {"id": 11},
        "GET",
        "/v1/tailored-gen/projects/11",
        None,
        {"id": 11},
    ),
    (
        "delete_project",
        lambda c, i: c.delete_project(11),
        204,
        None,
        "DELETE",
        "/v1/tailored-gen/projects/11",
        None,
        None,
    ),
    (
        "create_dataset",
        lambda c, i: c.create_dataset(project_id=11, name="luna-ds"),
        201,
        {"id": 21, "status": "draft", "visual_schema": None, "captions_update_status": "empty"},
        "POST",
        "/v1/tailored-gen/datasets",
        {"project_id": 11, "name": "luna-ds"},
        {"id": 21, "status": "draft", "visual_schema": None, "captions_update_status": "empty"},
    ),
    (
        "list_datasets",
        lambda c, i: c.list_datasets(11),
        200,
        [{"id": 21, "name": "luna-ds"}],
        "GET",
        "/v1/tailored-gen/projects/11/datasets",
        None,
        [{"id": 21, "name": "luna-ds"}],
    ),
    (
        "get_dataset",
        lambda c, i: c.get_dataset(21),
        200,
        {"id": 21, "images": [{"id": 1, "image_name": "a.png"}]},
        "GET",
        "/v1/tailored-gen/datasets/21",
        None,
        {"id": 21, "images": [{"id": 1, "image_name": "a.png"}]},
    ),
    (
        "update_dataset-schema",
        lambda c, i: c.update_dataset(21, visual_schema='{"style": "x"}'),
        200,
        {"id": 21},
        "PUT",
        "/v1/tailored-gen/datasets/21",
        {"visual_schema": '{"style": "x"}'},
        {"id": 21},
    ),
    (
        "update_dataset-prefix",
        lambda c, i: c.update_dataset(21, caption_prefix="Luna, a girl"),
        200,
        {"id": 21},
        "PUT",
        "/v1/tailored-gen/datasets/21",
        {"caption_prefix": "Luna, a girl"},
        {"id": 21},
    ),
    (
        "complete_dataset",
        lambda c, i: c.update_dataset(21, status="completed"),
        200,
        {"id": 21, "status": "completed"},
        "PUT",
        "/v1/tailored-gen/datasets/21",
        {"status": "completed"},
        {"id": 21, "status": "completed"},
    ),
    (
        "list_images",
        lambda c, i: c.list_images(21),
        200,
        [{"id": 31, "image_name": "a.png"}],
        "GET",
        "/v1/tailored-gen/datasets/21/images",
        None,
        [{"id": 31, "image_name": "a.png"}],
    ),
    (
        "upload_image",
        lambda c, i: c.upload_image(21, i[0], image_name="i0.png"),
        201,
        {
            "id": 31,
            "dataset_id": 21,
            "image_name": "i0.png",
            "caption": "Luna",
            "caption_source": "automatic",
            "image_url": "u",
            "thumbnail_url": "t",
        },
        "POST",
        "/v1/tailored-gen/datasets/21/images",
        "UPLOAD",
        {
            "id": 31,
            "dataset_id": 21,
            "image_name": "i0.png",
            "caption": "Luna",
            "caption_source": "automatic",
            "image_url": "u",
            "thumbnail_url": "t",
        },
    ),
    (
        "generate_visual_schema",
        lambda c, i: c.generate_visual_schema(i),
        200,
        {"visual_schema": '{"style": "flat"}'},
        "POST",
        "/v1/tailored-gen/generate_visual_schema",
        "IMAGES",
        '{"style": "flat"}',
    ),
    (
        "generate_prefix-prefix",
        _prefix,
        200,
        {"prefix": "Luna, a girl"},
        "POST",
        "/v1/tailored-gen/generate_prefix",
        "PREFIX",
        "Luna, a girl",
    ),
    (
        "generate_prefix-caption_prefix",
        _prefix,
        200,
        {"caption_prefix": "Luna, a girl"},
        "POST",
        "/v1/tailored-gen/generate_prefix",
        "PREFIX",
        "Luna, a girl",
    ),
    (
        "generate_prefix-bare-string",
        _prefix,
        200,
        "Luna, a girl",
        "POST",
        "/v1/tailored-gen/generate_prefix",
        "PREFIX",
        "Luna, a girl",
    ),
    (
        "create_model-fibo",
        lambda c, i: c.create_model(name="luna-m", dataset_id=21, training_mode="fully_automated"),
        201,
        {"id": 41, "status": "Created"},
        "POST",
        "/v1/tailored-gen/models",
        {"name": "luna-m", "dataset_id": 21, "training_mode": "fully_automated"},
        {"id": 41, "status": "Created"},
    ),
    (
        "create_model-legacy",
        lambda c, i: c.create_model(
            name="luna-m",
            dataset_id=21,
            training_mode="expert",
            training_version="light",
        ),
        201,
        {"id": 41, "status": "Created"},
        "POST",
        "/v1/tailored-gen/models",
        {
            "name": "luna-m",
            "dataset_id": 21,
            "training_mode": "expert",
            "training_version": "light",
        },
        {"id": 41, "status": "Created"},
    ),
    (
        "list_models",
        lambda c, i: c.list_models(11),
        200,
        [{"id": 41, "status": "InProgress"}],
        "GET",
        "/v1/tailored-gen/projects/11/models",
        None,
        [{"id": 41, "status": "InProgress"}],
    ),
    (
        "get_model",
        lambda c, i: c.get_model(41),
        200,
        {"id": 41, "status": "Completed", "generation_prefix": "Luna, "},
        "GET",
        "/v1/tailored-gen/models/41",
        None,
        {"id": 41, "status": "Completed", "generation_prefix": "Luna, "},
    ),
    (
        "start_training",
        lambda c, i: c.start_training(41),
        200,
        {"status": "InProgress"},
        "POST",
        "/v1/tailored-gen/models/41/start_training",
        {},
        {"status": "InProgress"},
    ),
    (
        "start_training-expert",
        lambda c, i: c.start_training(41, rank=32, learning_rate=1e-4, total_training_steps=1000),
        200,
        {"status": "InProgress"},
        "POST",
        "/v1/tailored-gen/models/41/start_training",
        {"rank": 32, "learning_rate": 1e-4, "total_training_steps": 1000},
        {"status": "InProgress"},
    ),
    (
        "delete_model",
        lambda c, i: c.delete_model(41),
        200,
        {},
        "DELETE",
        "/v1/tailored-gen/models/41",
        None,
        None,
    ),
    (
        "generate_tailored",
        lambda c, i: c.generate_tailored(
            tailored_model_id=41,
            prompt="Luna reading",
            seed=42,
            aspect_ratio="16:9",
            tailored_model_influence=0.9,
            guidance_scale=4,
            steps_num=30,
            negative_prompt="blur",
            structured_prompt='{"s": 1}',
        ),
        202,
        {"request_id": "req-1", "status_url": "https://engine/v2/status/req-1"},
        "POST",
        "/v2/image/generate/tailored",
        {
            "tailored_model_id": "41",
            "prompt": "Luna reading",
            "structured_prompt": '{"s": 1}',
            "negative_prompt": "blur",
            "seed": 42,
            "aspect_ratio": "16:9",
            "tailored_model_influence": 0.9,
            "guidance_scale": 4,
            "steps_num": 30,
            "sync": False,
        },
        Job("req-1", "https://engine/v2/status/req-1"),
    ),
    (
        "generate_structured_prompt",
        lambda c, i: c.generate_structured_prompt(images=i[:1], prompt="Luna in the forest"),
        202,
        {"request_id": "req-2", "status_url": "https://engine/v2/status/req-2"},
        "POST",
        "/v2/structured_prompt/generate",
        "SCENE",
        Job("req-2", "https://engine/v2/status/req-2"),
    ),
    (
        "get_status-in-progress",
        lambda c, i: c.get_status("req-1"),
        200,
        {"status": "IN_PROGRESS"},
        "GET",
        "/v2/status/req-1",
        None,
        JobStatus("IN_PROGRESS"),
    ),
    (
        "get_status-completed",
        lambda c, i: c.get_status("req-1"),
        200,
        {
            "status": "COMPLETED",
            "result": {"image_url": "u", "seed": 42, "structured_prompt": "{}"},
        },
        "GET",
        "/v2/status/req-1",
        None,
        JobStatus("COMPLETED", {"image_url": "u", "seed": 42, "structured_prompt": "{}"}),
    ),
    (
        "get_status-error",
        lambda c, i: c.get_status("req-1"),
        200,
        {"status": "ERROR", "error": {"code": 500, "message": "m"}},
        "GET",
        "/v2/status/req-1",
        None,
        JobStatus("ERROR", None, {"code": 500, "message": "m"}),
    ),
    (
        "text_to_image_tailored",
        lambda c, i: c.text_to_image_tailored(
            41,
            prompt="Luna reading",
            num_results=2,
            aspect_ratio="1:1",
            seed=7,
            model_influence=0.8,
            guidance=[("controlnet_canny", i[0], 0.5)],
        ),
        200,
        {"result": [{"urls": ["https://cdn/a.png"], "seed": 7}]},
        "POST",
        "/v1/text-to-image/tailored/41",
        "T2I",
        [{"urls": ["https://cdn/a.png"], "seed": 7}],
    ),
    (
        "reimagine",
        lambda c, i: c.reimagine(
            prompt="Luna in the forest",
            structure_image=i[1],
            structure_ref_influence=0.6,
            tailored_model_id=41,
            seed=3,
        ),
        200,
        {"result": [{"urls": ["https://cdn/b.png"], "seed": 3}]},
        "POST",
        "/v1/reimagine",
        "REIMAGINE",
        [{"urls": ["https://cdn/b.png"], "seed": 3}],
    ),
]


def expected_body(marker: Any, images: list[Path]) -> Any:
    bodies = {
        "UPLOAD": {
            "file": b64(images[0]),
            "image_name": "i0.png",
            "increase_resolution": True,
            "content_moderation": False,
        },
        "IMAGES": {"images": [b64(p) for p in images]},
        "PREFIX": {
            "images": [b64(p) for p in images[:2]],
            "ip_type": "defined_character",
            "ip_medium": "illustration",
            "ip_name": "Luna",
        },
        "SCENE": {"images": [b64(images[0])], "prompt": "Luna in the forest", "sync": False},
        "T2I": {
            "prompt": "Luna reading",
            "num_results": 2,
            "aspect_ratio": "1:1",
            "seed": 7,
            "model_influence": 0.8,
            "sync": False,
            "guidance_method_1": "controlnet_canny",
            "guidance_method_1_image_file": b64(images[0]),
            "guidance_method_1_scale": 0.5,
        },
        "REIMAGINE": {
            "prompt": "Luna in the forest",
            "structure_image_file": b64(images[1]),
            "structure_ref_influence": 0.6,
            "tailored_model_id": 41,
            "num_results": 1,
            "seed": 3,
            "sync": False,
        },
    }
    return bodies.get(marker, marker) if isinstance(marker, str) else marker


@pytest.mark.parametrize(
    ("call", "status", "answer", "method", "path", "body", "returned"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_endpoint_contract(
    images: list[Path],
    call: Any,
    status: int,
    answer: Any,
    method: str,
    path: str,
    body: Any,
    returned: Any,
) -> None:
    bria_api = Bria(status, answer)
    with BriaClient("http://bria.test", TOKEN, transport=httpx.MockTransport(bria_api)) as client:
        assert call(client, images) == returned
    assert bria_api.sent() == (method, path, expected_body(body, images))


def test_v2_generation_is_never_sync() -> None:
    seen: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.read()))
        return httpx.Response(202, json={"request_id": "r", "status_url": None})

    with BriaClient("http://bria.test", TOKEN, transport=httpx.MockTransport(handler)) as client:
        client.generate_tailored(tailored_model_id=1, prompt="p")
    assert seen[0]["sync"] is False


def test_status_spellings() -> None:
    assert bria.MODEL_STATUSES == (
        "Created",
        "InProgress",
        "Completed",
        "Failed",
        "Stopping",
        "Stopped",
    )
    assert bria.DATASET_STATUSES == ("draft", "completed")
    assert bria.JOB_STATUSES == ("IN_PROGRESS", "COMPLETED", "ERROR", "UNKNOWN")
    assert bria.IP_MEDIUMS == ("photography", "illustration")
    assert bria.TRAINING_MODES == ("fully_automated", "expert")
    assert bria.TRAINING_VERSIONS == ("light", "max")
    assert bria.ASPECT_RATIOS == ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9")
    assert bria.GUIDANCE_METHODS == (
        "controlnet_canny",
        "controlnet_depth",
        "controlnet_recoloring",
        "controlnet_color_grid",
    )


def test_an_answer_without_the_promised_field_is_an_api_error() -> None:
    handler = Bria(202, {"status_url": "x"})
    with (
        BriaClient("http://bria.test", TOKEN, transport=httpx.MockTransport(handler)) as client,
        pytest.raises(ApiError) as caught,
    ):
        client.generate_tailored(tailored_model_id=1, prompt="p")
    assert str(caught.value) == (
        "POST /v2/image/generate/tailored: HTTP 202: the answer has no request_id"
    )
