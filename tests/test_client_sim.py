"""The client against the simulator over real HTTP on 127.0.0.1.

Each endpoint, each error path the simulator can produce, and the whole chain of both
API generations, ending with the simulator's own count of calls equal to the client's.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeTime

from runner import simulator as sim
from runner.bria import errors as api_errors
from runner.bria.client import BriaClient
from tests.chain_demo import api_calls, fibo_chain, legacy_chain, make_images, train, wait_job

TOKEN = "sim-test-token"




@pytest.fixture
def simulator() -> Iterator[Any]:
    config = sim.SimConfig(
        token=TOKEN, training_seconds=0.6, generation_seconds=0.1, result_size=256
    )
    with sim.Simulator(config, host="127.0.0.1", port=0) as running:
        yield running


@pytest.fixture
def client(simulator: Any) -> Iterator[BriaClient]:
    with BriaClient(simulator.base_url, TOKEN, rpm=None) as bria:
        yield bria


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    return make_images(tmp_path / "training")


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    return make_images(tmp_path / "scene", count=1, size=512)[0]


def new_dataset(
    client: BriaClient, name: str = "p", *, with_schema: bool = True
) -> tuple[int, int]:
    project = client.create_project(
        project_name=name,
        ip_type="defined_character",
        ip_medium="illustration",
        ip_name="Luna",
        ip_description="girl with blue hair",
    )
    dataset = client.create_dataset(project_id=project["id"], name=f"{name}-ds")
    if with_schema:  # fibo models need one
        client.update_dataset(dataset["id"], visual_schema='{"style": "flat illustration"}')
    return int(project["id"]), int(dataset["id"])


# --- the whole chain, both generations ------------------------------------------------------


def test_both_chains_end_to_end_and_stats_match(
    simulator: Any, client: BriaClient, images: list[Path], scene: Path, tmp_path: Path
) -> None:
    made = fibo_chain(client, images, scene, tmp_path, "luna-fibo", 0.1)
    made += legacy_chain(client, images, scene, tmp_path, "luna-light", 0.1)
    assert len(made) == 4
    for path in made:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stats = simulator.stats()
    assert stats["calls"] == api_calls(client)
    assert stats["rate_limited"] == 0
    assert stats["created"]["projects"] == 2 and stats["created"]["models"] == 2
    assert stats["created"]["trainings_started"] == 2
    assert stats["created"]["images"] == 10
    assert set(stats["duplicates"].values()) == {0}
    assert stats["credits"] >= 2 * 80 + 4 * 3


# --- each endpoint ----------------------------------------------------------------------------


def test_crud_endpoints(client: BriaClient, images: list[Path]) -> None:
    project_id, dataset_id = new_dataset(client, "crud", with_schema=False)
    assert project_id in [p["id"] for p in client.list_projects()]
    assert client.get_project(project_id)["status"] == "active"
    assert [d["id"] for d in client.list_datasets(project_id)] == [dataset_id]
    dataset = client.get_dataset(dataset_id)
    assert (dataset["status"], dataset["visual_schema"]) == ("draft", None)
    client.update_dataset(dataset_id, visual_schema='{"style": "flat"}')
    uploaded = client.upload_image(dataset_id, images[0], image_name="first.png")
    assert isinstance(uploaded["id"], int) and uploaded["image_name"] == "first.png"
    assert [i["image_name"] for i in client.list_images(dataset_id)] == ["first.png"]
    assert [i["image_name"] for i in client.get_dataset(dataset_id)["images"]] == ["first.png"]
    model = client.create_model(name="m", dataset_id=dataset_id, training_mode="fully_automated")
    assert model["status"] == "Created"
    assert [m["id"] for m in client.list_models(project_id)] == [model["id"]]
    assert client.get_model(model["id"])["status"] == "Created"
    client.delete_model(model["id"])
    assert client.list_models(project_id) == []
    client.delete_project(project_id)
    with pytest.raises(api_errors.NotFound):
        client.get_project(project_id)


def test_identity_endpoints(client: BriaClient, images: list[Path]) -> None:
    _, dataset_id = new_dataset(client, with_schema=False)
    schema = client.generate_visual_schema(images)
    assert client.update_dataset(dataset_id, visual_schema=schema)["visual_schema"] == schema
    prefix = client.generate_prefix(
        images[:2], ip_type="defined_character", ip_medium="illustration", ip_name="Luna"
    )
    assert isinstance(prefix, str) and prefix


# --- error paths the simulator produces ----------------------------------------------------------


def test_wrong_token_is_unauthorized(simulator: Any) -> None:
    bad = BriaClient(simulator.base_url, "wrong-token", rpm=None)
    with bad, pytest.raises(api_errors.Unauthorized) as caught:
        bad.list_projects()
    assert caught.value.status == 401 and "wrong-token" not in str(caught.value)


def test_not_found(client: BriaClient) -> None:
    with pytest.raises(api_errors.NotFound) as caught:
        client.get_model(987654)
    assert caught.value.path == "/v1/tailored-gen/models/987654"


def test_bad_request(client: BriaClient) -> None:
    with pytest.raises(api_errors.BadRequest):
        client.create_project(project_name="p", ip_type="defined_character", ip_medium="oil")


def test_dataset_rules(client: BriaClient, images: list[Path], tmp_path: Path) -> None:
    _, dataset_id = new_dataset(client)
    client.upload_image(dataset_id, images[0], image_name="a.png")
    with pytest.raises(api_errors.Conflict):  # fibo needs 5 images to complete
        client.update_dataset(dataset_id, status="completed")
    small = make_images(tmp_path / "small", count=1, size=100)[0]
    with pytest.raises(api_errors.PreconditionFailed):
        client.upload_image(dataset_id, small, image_name="small.png")
    not_image = tmp_path / "notes.png"
    not_image.write_bytes(b"these are notes, not pixels")
    with pytest.raises(api_errors.UnsupportedMediaType):
        client.upload_image(dataset_id, not_image, image_name="notes.png")
    model = client.create_model(name="m", dataset_id=dataset_id, training_mode="fully_automated")
    with pytest.raises(api_errors.PreconditionFailed):  # dataset not completed
        client.start_training(model["id"])
    for path in images[1:]:
        client.upload_image(dataset_id, path, image_name=path.name)
    client.update_dataset(dataset_id, status="completed")
    with pytest.raises(api_errors.Conflict):  # completed datasets take no more images
        client.upload_image(dataset_id, images[0], image_name="late.png")
    client.start_training(model["id"])
    with pytest.raises(api_errors.Conflict):
        client.start_training(model["id"])


def test_too_large_upload(client: BriaClient, tmp_path: Path) -> None:
    _, dataset_id = new_dataset(client)
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (12 * 1024 * 1024 + 1))
    with pytest.raises(api_errors.PayloadTooLarge):
        client.upload_image(dataset_id, big, image_name="big.png")


@pytest.fixture
def model_id(client: BriaClient, images: list[Path]) -> int:
    return train(client, images, "trained", None, 0.1)


def test_moderation_and_job_outcomes(client: BriaClient, model_id: int) -> None:
    with pytest.raises(api_errors.Unprocessable):
        client.generate_tailored(tailored_model_id=model_id, prompt="a forbidden thing")
    failing = client.generate_tailored(tailored_model_id=model_id, prompt="sim-error please")
    with pytest.raises(api_errors.JobFailed):
        wait_job(client, failing.request_id, 0.05)
    unknown = client.generate_tailored(tailored_model_id=model_id, prompt="sim-unknown please")
    with pytest.raises(api_errors.JobUnknown):
        wait_job(client, unknown.request_id, 0.05)
    with pytest.raises(api_errors.JobLost):
        client.get_status("no-such-request")


def test_expired_result_link(simulator: Any, client: BriaClient, model_id: int) -> None:
    simulator.configure(link_ttl=0.0)  # a job keeps the link lifetime it started with
    job = client.generate_tailored(tailored_model_id=model_id, prompt="Luna reading", seed=1)
    url = wait_job(client, job.request_id, 0.05)["image_url"]
    with pytest.raises(api_errors.ResultExpired):
        client.download(url, io.BytesIO())


def test_results_differ_by_seed(client: BriaClient, model_id: int) -> None:
    def image(seed: int) -> bytes:
        job = client.generate_tailored(tailored_model_id=model_id, prompt="Luna", seed=seed)
        out = io.BytesIO()
        client.download(wait_job(client, job.request_id, 0.05)["image_url"], out)
        return out.getvalue()

    assert image(1) == image(1)
    assert image(1) != image(2)


# --- faults, retries and rate limits -------------------------------------------------------------


def fake_time_client(simulator: Any, t: FakeTime, **kw: Any) -> BriaClient:
    return BriaClient(simulator.base_url, TOKEN, sleep=t.sleep, clock=t.clock, **kw)


@pytest.mark.parametrize(
    ("fault", "cls"),
    [("fail_rate", api_errors.ServerError), ("drop_rate", api_errors.NetworkError)],
    ids=["5xx", "dropped"],
)
def test_faults_are_retried_for_get_then_reported(
    simulator: Any, fault: str, cls: type[api_errors.ApiError]
) -> None:
    simulator.configure(**{fault: 1.0})
    t = FakeTime()
    with fake_time_client(simulator, t, rpm=None) as bria, pytest.raises(cls):
        bria.list_projects()
    assert len(t.sleeps) == 3
    simulator.configure(**{fault: 0.0})
    assert simulator.stats()["calls"]["GET /v1/tailored-gen/projects"] == 4


def test_post_is_not_retried_after_a_fault(simulator: Any) -> None:
    simulator.configure(fail_rate=1.0)
    t = FakeTime()
    with fake_time_client(simulator, t, rpm=None) as bria, pytest.raises(api_errors.ServerError):
        bria.create_dataset(project_id=1, name="d")
    assert t.sleeps == []
    assert simulator.stats()["calls"]["POST /v1/tailored-gen/datasets"] == 1


def test_server_429_is_honoured(simulator: Any) -> None:
    simulator.configure(rpm=1, rate_window=60.0)
    t = FakeTime()
    with fake_time_client(simulator, t, rpm=None) as bria:
        bria.list_projects()
        with pytest.raises(api_errors.RateLimited) as caught:
            bria.list_projects()
    assert caught.value.retry_after is not None
    assert len(t.sleeps) == 3 and all(s > 0 for s in t.sleeps)
    assert simulator.stats()["rate_limited"] == 4


def test_client_limiter_avoids_429_at_the_plans_limit(simulator: Any) -> None:
    simulator.configure(rpm=3, rate_window=0.3)
    with BriaClient(simulator.base_url, TOKEN, rpm=3, window=0.3) as bria:
        for _ in range(8):
            bria.list_projects()
        assert bria.stats()["GET /v1/tailored-gen/projects"]["rate_limited"] == 0
    stats = simulator.stats()
    assert stats["rate_limited"] == 0
    assert stats["calls"]["GET /v1/tailored-gen/projects"] == 8
