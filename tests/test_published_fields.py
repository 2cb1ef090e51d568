"""The requests bria-run sends follow Bria's published field names and types, and the
simulator refuses what a typed Bria server would refuse."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from simrun import REPO

from runner.bria.client import BriaClient
from runner.display.reporters import QuietReporter
from runner.engine.context import Context, RunOptions
from runner.engine.executor import Engine
from runner.engine.plan import plan
from runner.pipeline.loader import load_pipeline
from runner.simulator import SimConfig, Simulator
from runner.simulator.schemas import SCHEMAS, departure, legacy_fields, unknown_fields
from runner.state.rows import ApiIdentity
from runner.state.store import Store

EXAMPLES = ("luna.yaml", "luna-legacy.yaml")
FAST = {"training_seconds": 0.3, "generation_seconds": 0.05}


def run_in_process(path: Path, sim: Simulator, state: Path) -> Engine:
    """One run of ``path`` against ``sim``, in this process (fast polls)."""
    pipeline, _ = load_pipeline(path)
    client = BriaClient(sim.base_url, sim.config.token, rpm=None)
    with client, Store.open(state, ApiIdentity("simulated", sim.world_id)) as store:
        hashes = dict(pipeline.image_hashes)
        the_plan = plan(pipeline, store.load(), hashes)
        ctx = Context(pipeline, the_plan, store, client, QuietReporter(),
                      RunOptions(poll_every=0.05, job_poll=0.05), hashes=hashes)
        engine = Engine(ctx)
        engine.run()
        return engine


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both examples run against one recording simulator: each one's requests and stats."""
    folder = tmp_path_factory.mktemp("examples")
    shutil.copytree(REPO / "pipelines", folder / "pipelines")
    found: dict[str, Any] = {}
    for name in EXAMPLES:
        with Simulator(SimConfig(record_requests=True, **FAST)) as sim:  # type: ignore[arg-type]
            run_in_process(folder / "pipelines" / name, sim, folder / f"{name}.sqlite")
            found[name] = {"requests": list(sim.requests), "stats": sim.stats()}
    return found


@pytest.mark.parametrize("name", EXAMPLES)
def test_examples_send_no_schema_departure_and_no_unknown_field(
    recorded: dict[str, Any], name: str
) -> None:
    stats = recorded[name]["stats"]
    assert stats["schema_departures"] == {}
    assert stats["unknown_fields"] == {}


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_recorded_request_matches_its_operations_schema(
    recorded: dict[str, Any], name: str
) -> None:
    requests = recorded[name]["requests"]
    assert requests, "the run sent nothing"
    for key, body in requests:
        assert key in SCHEMAS, f"{key} has no schema in the simulator"
        assert departure(key, body) is None, (key, body)
        assert unknown_fields(key, body) == [], (key, body)


def test_fibo_example_uses_only_published_fields(recorded: dict[str, Any]) -> None:
    requests = recorded["luna.yaml"]["requests"]
    assert [(k, legacy_fields(k, b)) for k, b in requests if legacy_fields(k, b)] == []
    sent = {key for key, _ in requests}
    assert {"POST /v2/image/generate/tailored", "POST /v2/structured_prompt/generate",
            "POST /v1/tailored-gen/generate_visual_schema"} <= sent


def test_fibo_generations_name_the_model_as_a_string(recorded: dict[str, Any]) -> None:
    bodies = [b for k, b in recorded["luna.yaml"]["requests"]
              if k == "POST /v2/image/generate/tailored"]
    assert len(bodies) == 5
    assert all(isinstance(b["tailored_model_id"], str) and b["tailored_model_id"].isdigit()
               for b in bodies)


def test_legacy_example_takes_the_legacy_routes(recorded: dict[str, Any]) -> None:
    sent = {key for key, _ in recorded["luna-legacy.yaml"]["requests"]}
    assert {"POST /v1/tailored-gen/generate_prefix", "POST /v1/reimagine",
            "POST /v1/text-to-image/tailored/{id}"} <= sent


# --- the simulator refuses wrong types the way Bria would ---------------------------------


@pytest.fixture()
def http() -> Any:
    sim = Simulator(SimConfig(**FAST)).start()  # type: ignore[arg-type]
    with sim, httpx.Client(base_url=sim.base_url, headers={"api_token": sim.config.token}) as c:
        yield sim, c


def test_an_integer_model_id_on_a_v2_route_is_400_in_the_v2_envelope(http: Any) -> None:
    sim, client = http
    answer = client.post("/v2/image/generate/tailored",
                         json={"tailored_model_id": 4001, "prompt": "Luna"})
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"]["code"] == 400 and "request_id" in body
    assert body["error"]["message"] == "tailored_model_id: must be of type string"
    assert sim.stats()["schema_departures"] == {"POST /v2/image/generate/tailored": 1}


def test_a_string_project_id_on_a_v1_route_is_400_naming_the_field(http: Any) -> None:
    _, client = http
    answer = client.post("/v1/tailored-gen/datasets", json={"project_id": "101", "name": "d"})
    assert answer.status_code == 400
    assert answer.json() == {"errors": [{"msg": "project_id: must be of type integer",
                                         "field_name": "project_id", "field_input": "101"}]}


def test_a_float_guidance_scale_is_refused_as_bria_publishes_an_integer(http: Any) -> None:
    _, client = http
    answer = client.post("/v2/image/generate/tailored",
                         json={"tailored_model_id": "1", "prompt": "x", "guidance_scale": 3.5})
    assert answer.status_code == 400
    assert "guidance_scale: must be of type integer" in answer.json()["error"]["message"]


def test_unknown_fields_are_accepted_and_counted(http: Any) -> None:
    sim, client = http
    answer = client.post("/v1/tailored-gen/projects", json={
        "project_name": "p", "ip_type": "stylized_scene", "ip_medium": "photography",
        "colour": "blue"})
    assert answer.status_code == 201
    assert sim.stats()["unknown_fields"] == {"POST /v1/tailored-gen/projects": {"colour": 1}}


def test_a_missing_required_field_is_400(http: Any) -> None:
    _, client = http
    answer = client.post("/v1/tailored-gen/generate_visual_schema", json={})
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field_name"] == "images"


def test_every_mutating_route_has_a_schema() -> None:
    from runner.simulator.routes import ROUTES

    missing = [r.key for r in ROUTES if r.method in ("POST", "PUT") and r.key not in SCHEMAS]
    assert missing == []
