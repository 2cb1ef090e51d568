"""Every scene field, down every route: it reaches that route's request, or validation
refuses it. Nothing is dropped silently."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from simrun import REPO
from test_published_fields import FAST, run_in_process

from runner.errors import PipelineInvalid
from runner.pipeline.loader import load_pipeline
from runner.pipeline.scene_routes import ROUTES, SCENE_FIELDS, SceneRoute
from runner.simulator import SimConfig, Simulator

EXAMPLE = REPO / "pipelines" / "luna"
# A value for each field that differs from every default, so arriving is visible.
SAMPLES: dict[str, Any] = {
    "prompt": None,  # each scene's own prompt, which also tells the scenes apart
    "structure_strength": 0.35,
    "aspect_ratio": "4:5",
    "variations": 2,
    "seed": 123,
    "negative_prompt": "no blur",
    "model_influence": 0.55,
    "guidance_scale": 4,
    "steps_num": 33,
    "guidance": [{"method": "controlnet_canny", "image": "guide.png", "scale": 0.45}],
}
GENERATION = {
    "fibo text": ("POST /v2/image/generate/tailored", None),
    "fibo reference": ("POST /v2/image/generate/tailored", "POST /v2/structured_prompt/generate"),
    "legacy text": ("POST /v1/text-to-image/tailored/{id}", None),
    "legacy reference": ("POST /v1/reimagine", None),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    here = tmp_path_factory.mktemp("fields")
    shutil.copytree(EXAMPLE / "training", here / "training")
    shutil.copy(EXAMPLE / "scenes" / "forest.png", here / "scene.png")
    shutil.copy(EXAMPLE / "guidance" / "castle-depth.png", here / "guide.png")
    return here


def is_legacy(route: SceneRoute) -> bool:
    return route.name.startswith("legacy")


def has_reference(route: SceneRoute) -> bool:
    return route.name.endswith("reference")


def scene_for(route: SceneRoute, fields: dict[str, Any]) -> dict[str, Any]:
    scene: dict[str, Any] = {"name": route.name.replace(" ", "-"), "prompt": f"Luna {route.name}"}
    if has_reference(route):
        scene["reference"] = "scene.png"
    return {**scene, **fields}


def write(folder: Path, version: str, scenes: list[dict[str, Any]]) -> Path:
    path = folder / f"{version}-{len(list(folder.glob('*.yaml')))}.yaml"
    path.write_text(
        f"version: 1\nname: fields-{version}\ncharacter:\n  name: Luna\n"
        "  description: girl with blue hair\n  medium: illustration\n  images: [training/]\n"
        f"  identity_samples: 5\ntraining: {{version: {version}}}\n"
        f"scenes: {json.dumps(scenes)}\noutputs: out-{version}\n")
    return path


def verdict(folder: Path, route: SceneRoute, field: str) -> str:
    """"refused" when validation refuses ``field`` on ``route``, else "accepted"."""
    version = "light" if is_legacy(route) else "fibo"
    path = write(folder, version, [scene_for(route, {field: SAMPLES[field]})])
    try:
        load_pipeline(path)
    except PipelineInvalid as exc:
        where = {p.path for p in exc.errors}
        assert where == {f"scenes[0].{field}"}, [str(p) for p in exc.errors]
        return "refused"
    return "accepted"


def test_the_table_names_every_field_a_scene_can_hold() -> None:
    schema = json.loads((REPO / "schemas" / "pipeline.schema.json").read_text())
    properties = set(schema["properties"]["scenes"]["items"]["properties"])
    assert properties - {"name"} == set(SCENE_FIELDS)
    for route in ROUTES:
        covered = set(route.takes) | set(route.refuses)
        assert covered | {"reference"} == set(SCENE_FIELDS), route.name
        assert not set(route.takes) & set(route.refuses), route.name


def test_every_field_reaches_its_route_or_is_refused(folder: Path) -> None:
    accepted: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        accepted[route.name] = {}
        for field in SCENE_FIELDS:
            if field in ("prompt", "reference"):
                continue  # every scene has a prompt; the reference chooses the route
            found = verdict(folder, route, field)
            expected = "accepted" if field in route.takes else "refused"
            assert found == expected, f"{field} on {route.name}: {found}"
            if found == "accepted":
                accepted[route.name][field] = SAMPLES[field]
    for version, routes in (("fibo", ROUTES[:2]), ("light", ROUTES[2:])):
        scenes = [scene_for(route, accepted[route.name]) for route in routes]
        with Simulator(SimConfig(record_requests=True, **FAST)) as sim:  # type: ignore[arg-type]
            run_in_process(write(folder, version, scenes), sim, folder / f"{version}.sqlite")
            requests = list(sim.requests)
        for route in routes:
            check_arrived(route, accepted[route.name], requests)


def check_arrived(route: SceneRoute, fields: dict[str, Any],
                  requests: list[tuple[str, dict[str, Any]]]) -> None:
    prompt = f"Luna {route.name}"
    generation, first = GENERATION[route.name]
    mine = [b for k, b in requests if k == generation and b.get("prompt") == prompt]
    assert mine, f"no {generation} for {route.name}"
    for field, value in {**fields, "prompt": prompt}.items():
        target = route.takes[field]
        if field == "variations":
            assert len(mine) == value, route.name
        elif field == "seed":
            assert sorted(b["seed"] for b in mine) == [value, value + 1], route.name
        elif field == "guidance":
            guide = value[0]
            assert all(b["guidance_method_1"] == guide["method"]
                       and b["guidance_method_1_scale"] == guide["scale"]
                       and b["guidance_method_1_image_file"] for b in mine), route.name
        else:
            assert all(b[target] == value for b in mine), (route.name, field, target)
    if has_reference(route):
        if first is not None:  # fibo: the reference is read into a structured prompt first
            described = [b for k, b in requests if k == first and b.get("prompt") == prompt]
            assert described and len(described[0]["images"]) == 1
            assert all(b.get("structured_prompt") for b in mine)
        else:
            assert all(b.get("structure_image_file") for b in mine)
