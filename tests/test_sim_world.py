"""The simulated world's state machines, driven directly with a fake clock (no HTTP)."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from PIL import Image

from runner.simulator import SimConfig, jobs
from runner.simulator.answers import SimError
from runner.simulator.world import World


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def png_b64(width: int = 300, height: int = 300, colour: tuple[int, int, int] = (9, 90, 200)) -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def world(clock: FakeClock) -> World:
    config = SimConfig(clock=clock, training_seconds=100, generation_seconds=10, link_ttl=50,
                       job_ttl=500)
    return World(config)


def project(world: World, name: str = "luna") -> int:
    body = {"project_name": name, "ip_type": "defined_character", "ip_medium": "illustration",
            "ip_name": "Luna", "ip_description": "girl with blue hair"}
    return int(world.create_project(body)["id"])


def dataset(world: World, *, images: int, fibo: bool = True, project_id: int | None = None) -> int:
    found = world.create_dataset({"project_id": project_id or project(world), "name": "ds"})
    identity = {"visual_schema": '{"style": "x"}'} if fibo else {"caption_prefix": "Luna, "}
    world.update_dataset(found["id"], identity)
    for n in range(images):
        world.upload_image(found["id"], {"file": png_b64(), "image_name": f"{n}.png"})
    return int(found["id"])


def trained(world: World, clock: FakeClock, *, version: str | None = None) -> int:
    dataset_id = dataset(world, images=5, fibo=version is None)
    world.update_dataset(dataset_id, {"status": "completed"})
    body: dict[str, Any] = {"name": "m", "dataset_id": dataset_id,
                            "training_mode": "fully_automated", "training_version": version}
    model_id = int(world.create_model(body)["id"])
    world.start_training(model_id, {})
    clock.now += 100
    return model_id


def status_of(call: Any) -> int:
    with pytest.raises(SimError) as caught:
        call()
    return caught.value.status


def test_new_dataset_is_draft_with_bria_fields(world: World) -> None:
    found = world.create_dataset({"project_id": project(world), "name": "ds"})
    assert (found["status"], found["visual_schema"], found["captions_update_status"]) == (
        "draft", None, "empty")
    assert isinstance(found["id"], int)


@pytest.mark.parametrize(("fibo", "needed"), [(True, 5), (False, 1)], ids=["fibo", "legacy"])
def test_completion_needs_the_minimum_images(world: World, fibo: bool, needed: int) -> None:
    dataset_id = dataset(world, images=needed - 1, fibo=fibo)
    assert status_of(lambda: world.update_dataset(dataset_id, {"status": "completed"})) == 409
    world.upload_image(dataset_id, {"file": png_b64(), "image_name": "last.png"})
    assert world.update_dataset(dataset_id, {"status": "completed"})["status"] == "completed"


def test_completed_dataset_refuses_changes(world: World) -> None:
    dataset_id = dataset(world, images=5)
    world.update_dataset(dataset_id, {"status": "completed"})
    assert status_of(lambda: world.upload_image(dataset_id, {"file": png_b64()})) == 409
    assert status_of(lambda: world.update_dataset(dataset_id, {"visual_schema": "{}"})) == 409
    assert world.update_dataset(dataset_id, {"status": "completed"})["status"] == "completed"


def test_training_moves_created_inprogress_completed(world: World, clock: FakeClock) -> None:
    dataset_id = dataset(world, images=5)
    world.update_dataset(dataset_id, {"status": "completed"})
    model = world.create_model({"name": "m", "dataset_id": dataset_id})
    assert model["status"] == "Created"
    assert world.start_training(model["id"], {})["status"] == "InProgress"
    clock.now += 99
    assert world.model(model["id"]).show(clock())["status"] == "InProgress"
    clock.now += 1
    assert world.model(model["id"]).show(clock())["status"] == "Completed"
    assert world.accounts.credits == 80


def test_training_fails_on_demand(world: World, clock: FakeClock) -> None:
    world.config.fail_training = True
    model_id = trained(world, clock)
    assert world.model(model_id).status(clock()) == "Failed"


def test_start_training_twice_is_409(world: World, clock: FakeClock) -> None:
    model_id = trained(world, clock)
    assert status_of(lambda: world.start_training(model_id, {})) == 409
    assert world.accounts.created["trainings_started"] == 1


def test_start_training_on_draft_dataset_is_412(world: World) -> None:
    model = world.create_model({"name": "m", "dataset_id": dataset(world, images=5)})
    assert status_of(lambda: world.start_training(model["id"], {})) == 412


def test_expert_parameters_need_expert_mode(world: World) -> None:
    dataset_id = dataset(world, images=5)
    world.update_dataset(dataset_id, {"status": "completed"})
    model = world.create_model({"name": "m", "dataset_id": dataset_id})
    assert status_of(lambda: world.start_training(model["id"], {"rank": 64})) == 400


def test_legacy_model_shows_version_and_prefix(world: World, clock: FakeClock) -> None:
    model = world.model(trained(world, clock, version="max")).show(clock())
    assert (model["training_version"], model["generation_prefix"]) == ("max", "Luna, ")


def test_project_is_locked_to_its_first_family(world: World) -> None:
    project_id = project(world)
    fibo = dataset(world, images=1, project_id=project_id)
    world.create_model({"name": "a", "dataset_id": fibo})
    body = {"name": "b", "dataset_id": fibo, "training_version": "light"}
    assert status_of(lambda: world.create_model(body)) == 400


def test_delete_project_while_training_is_409(world: World, clock: FakeClock) -> None:
    model_id = trained(world, clock)
    clock.now -= 50
    project_id = world.model(model_id).project_id
    assert status_of(lambda: world.delete_project(project_id)) == 409
    clock.now += 50
    world.delete_project(project_id)
    assert world.list_projects() == [] and world.models == {}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"project_name": None}, "project_name"),
        ({"ip_type": "hero"}, "ip_type"),
        ({"ip_medium": "oil"}, "ip_medium"),
        ({"ip_name": None}, "ip_name"),
        ({"ip_name": "a very long name here"}, "ip_name"),
        ({"ip_description": "one two three four five six seven"}, "ip_description"),
    ],
    ids=["no-name", "bad-type", "bad-medium", "no-ip-name", "long-ip-name", "long-description"],
)
def test_project_validation_names_the_field(world: World, changes: dict[str, Any],
                                            field: str) -> None:
    body = {"project_name": "p", "ip_type": "defined_character", "ip_medium": "photography",
            "ip_name": "Luna", "ip_description": "girl", **changes}
    with pytest.raises(SimError) as caught:
        world.create_project(body)
    assert caught.value.status == 400
    assert caught.value.body["errors"][0]["field_name"] == field


def test_v2_job_moves_in_progress_to_completed(world: World, clock: FakeClock) -> None:
    model_id = trained(world, clock)
    code, answer = jobs.submit_tailored(world, {"tailored_model_id": str(model_id), "prompt": "x"})
    assert code == 202 and answer["status_url"].endswith(f"/v2/status/{answer['request_id']}")
    assert jobs.status(world, answer["request_id"]) == (
        200, {"status": "IN_PROGRESS", "request_id": answer["request_id"]})
    clock.now += 10
    code, done = jobs.status(world, answer["request_id"])
    assert done["status"] == "COMPLETED"
    assert set(done["result"]) == {"image_url", "seed", "structured_prompt"}
    assert world.accounts.credits == 80 + 3


def test_v2_status_of_unknown_or_expired_job_is_404(world: World, clock: FakeClock) -> None:
    assert jobs.status(world, "nope")[1]["status"] == "NOT_FOUND"
    model_id = trained(world, clock)
    _, answer = jobs.submit_tailored(world, {"tailored_model_id": str(model_id), "prompt": "x"})
    clock.now += 10 + 501
    assert jobs.status(world, answer["request_id"]) == (
        404, {"status": "NOT_FOUND", "request_id": answer["request_id"]})


@pytest.mark.parametrize(("prompt", "status"), [("sim-error", "ERROR"), ("sim-unknown", "UNKNOWN")],
                         ids=["error", "unknown"])
def test_v2_job_can_end_badly(world: World, clock: FakeClock, prompt: str, status: str) -> None:
    model_id = trained(world, clock)
    _, answer = jobs.submit_tailored(world, {"tailored_model_id": str(model_id), "prompt": prompt})
    clock.now += 10
    assert jobs.status(world, answer["request_id"])[1]["status"] == status


def test_cold_start_delays_the_first_job_only(world: World, clock: FakeClock) -> None:
    world.config.cold_start = 30
    model_id = trained(world, clock)
    _, first = jobs.submit_tailored(world, {"tailored_model_id": str(model_id), "prompt": "x"})
    _, second = jobs.submit_tailored(world, {"tailored_model_id": str(model_id), "prompt": "y"})
    clock.now += 10
    assert jobs.status(world, first["request_id"])[1]["status"] == "IN_PROGRESS"
    assert jobs.status(world, second["request_id"])[1]["status"] == "COMPLETED"


def test_legacy_link_404_until_ready_then_expires(world: World, clock: FakeClock) -> None:
    model_id = trained(world, clock, version="light")
    answer = jobs.text_to_image(world, model_id, {"prompt": "x", "num_results": 2, "seed": 7})
    assert [r["seed"] for r in answer["result"]] == [7, 8]
    request_id = answer["result"][0]["urls"][0].rsplit("/", 1)[1].removesuffix(".png")
    assert jobs.link(world, request_id)[0] == 404
    clock.now += 10
    assert jobs.link(world, request_id)[0] == 200
    clock.now += 50
    assert jobs.link(world, request_id)[0] == 403


def test_generation_needs_a_completed_model_of_its_generation(world: World,
                                                              clock: FakeClock) -> None:
    model_id = trained(world, clock)
    clock.now -= 1
    body = {"tailored_model_id": str(model_id), "prompt": "x"}
    assert status_of(lambda: jobs.submit_tailored(world, body)) == 412
    clock.now += 1
    assert status_of(lambda: jobs.text_to_image(world, model_id, {"prompt": "x"})) == 400
    assert status_of(lambda: jobs.submit_tailored(world, {**body, "tailored_model_id": "1"})) == 403


def test_structured_prompt_carries_the_scene(world: World, clock: FakeClock) -> None:
    _code, answer = jobs.submit_structured_prompt(world, {"images": [png_b64()], "prompt": "woods"})
    clock.now += 10
    structured = jobs.status(world, answer["request_id"])[1]["result"]["structured_prompt"]
    assert json.loads(structured)["sim_scene"] in world.scenes
    model_id = trained(world, clock)
    _, image = jobs.submit_tailored(world, {"tailored_model_id": str(model_id),
                                            "structured_prompt": structured})
    assert world.jobs[image["request_id"]].scene == json.loads(structured)["sim_scene"]


def test_duplicates_are_counted_per_scope(world: World) -> None:
    first = project(world, "same")
    project(world, "same")
    world.create_dataset({"project_id": first, "name": "d"})
    world.create_dataset({"project_id": first, "name": "d"})
    assert world.accounts.duplicates() == {
        "projects": 1, "datasets": 1, "images": 0, "models": 0, "generations": 0}


def test_moderated_prompt_is_422(world: World, clock: FakeClock) -> None:
    model_id = trained(world, clock)
    body = {"tailored_model_id": str(model_id), "prompt": "something forbidden"}
    assert status_of(lambda: jobs.submit_tailored(world, body)) == 422
