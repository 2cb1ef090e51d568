"""Scene references, guidance and training images by https:// URL: passed to Bria as
URLs, never fetched by bria-run, changes detected by the URL text; other schemes refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from simrun import REPO
from test_published_fields import FAST, run_in_process

from runner.engine.plan import plan
from runner.errors import PipelineInvalid, RunFailed
from runner.pipeline.loader import load_pipeline
from runner.simulator import SimConfig, Simulator
from runner.state.store import Store

EXAMPLE = REPO / "pipelines" / "luna"
SCENE_URL = "https://cdn.example.com/scenes/forest%20night.png?v=2"
TRAINING_URL = "https://cdn.example.com/luna/extra-pose.png"
GUIDE_URL = "https://cdn.example.com/guides/depth.png"


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLE / "training", tmp_path / "training")
    shutil.copy(EXAMPLE / "scenes" / "forest.png", tmp_path / "scene.png")
    return tmp_path


def write(folder: Path, *, version: str = "fibo", images: list[str] | None = None,
          scenes: list[dict[str, Any]] | None = None) -> Path:
    path = folder / "p.yaml"
    path.write_text(
        f"version: 1\nname: urls\ncharacter:\n  name: Luna\n  description: girl with blue hair\n"
        f"  medium: illustration\n  images: {json.dumps(images or ['training/'])}\n"
        f"  identity_samples: 5\ntraining: {{version: {version}}}\n"
        f"scenes: {json.dumps(scenes or [{'name': 'a', 'prompt': 'Luna'}])}\n")
    return path


@pytest.mark.parametrize(("where", "value"), [
    ("reference", "http://cdn.example.com/scene.png"),
    ("reference", "file:///tmp/scene.png"),
    ("reference", "ftp://cdn.example.com/scene.png"),
    ("training", "http://cdn.example.com/luna.png"),
    ("guidance", "file:///tmp/depth.png"),
], ids=["http-reference", "file-reference", "ftp-reference", "http-training", "file-guidance"])
def test_other_schemes_are_refused(folder: Path, where: str, value: str) -> None:
    scheme = value.split("://")[0]
    if where == "training":
        path = write(folder, images=["training/", value])
        at = "character.images[1]"
    elif where == "guidance":
        path = write(folder, version="light", scenes=[{"name": "a", "prompt": "Luna", "guidance": [
            {"method": "controlnet_depth", "image": value}]}])
        at = "scenes[0].guidance[0].image"
    else:
        path = write(folder, scenes=[{"name": "a", "prompt": "Luna", "reference": value}])
        at = "scenes[0].reference"
    with pytest.raises(PipelineInvalid) as caught:
        load_pipeline(path)
    [problem] = caught.value.errors
    assert problem.path == at
    assert problem.message == (f"`{value}` is a {scheme}:// URL; only https:// URLs are passed "
                               "to Bria (bria-run never fetches a URL itself)")


def test_https_urls_are_kept_as_urls(folder: Path) -> None:
    spec, _ = load_pipeline(write(folder, images=["training/", TRAINING_URL],
                                  scenes=[{"name": "a", "prompt": "Luna", "reference": SCENE_URL}]))
    assert spec.scenes[0].reference == SCENE_URL
    assert TRAINING_URL in spec.character.images and len(spec.character.images) == 11


def test_urls_reach_bria_as_urls_and_are_never_fetched(folder: Path) -> None:
    path = write(folder, images=["training/", TRAINING_URL],
                 scenes=[{"name": "a", "prompt": "Luna in the night forest",
                          "reference": SCENE_URL}])
    with Simulator(SimConfig(record_requests=True, **FAST)) as sim:  # type: ignore[arg-type]
        engine = run_in_process(path, sim, folder / "s.sqlite")
        requests = list(sim.requests)
    uploads = [b for k, b in requests if k.endswith("/datasets/{id}/images")]
    by_url = [b for b in uploads if "image_url" in b]
    assert [(b["image_url"], "file" in b) for b in by_url] == [(TRAINING_URL, False)]
    assert by_url[0]["image_name"].startswith("extra-pose-")
    described = [b for k, b in requests if k == "POST /v2/structured_prompt/generate"]
    assert described[0]["images"] == [SCENE_URL]
    # bria-run itself only ever called the API and the result links
    called = set(engine.ctx.client.stats())
    assert not [c for c in called if "cdn.example.com" in c], called


def test_legacy_passes_url_references_and_guidance_as_url_fields(folder: Path) -> None:
    path = write(folder, version="light", scenes=[
        {"name": "a", "prompt": "Luna at night", "reference": SCENE_URL},
        {"name": "b", "prompt": "Luna at the castle",
         "guidance": [{"method": "controlnet_depth", "image": GUIDE_URL, "scale": 0.5}]}])
    with Simulator(SimConfig(record_requests=True, **FAST)) as sim:  # type: ignore[arg-type]
        run_in_process(path, sim, folder / "s.sqlite")
        requests = list(sim.requests)
    [reimagine] = [b for k, b in requests if k == "POST /v1/reimagine"]
    assert reimagine["structure_image_url"] == SCENE_URL and "structure_image_file" not in reimagine
    [text] = [b for k, b in requests if k == "POST /v1/text-to-image/tailored/{id}"]
    assert text["guidance_method_1_image_url"] == GUIDE_URL


def test_change_detection_uses_the_url_text(folder: Path) -> None:
    scenes = [{"name": "a", "prompt": "Luna", "reference": SCENE_URL}]
    path = write(folder, scenes=scenes)
    state = folder / "s.sqlite"
    with Simulator(SimConfig(**FAST)) as sim:  # type: ignore[arg-type]
        run_in_process(path, sim, state)

    def scene_action() -> tuple[str, str]:
        spec, _ = load_pipeline(path)
        with Store.open(state, None) as store:
            step = next(s for s in plan(spec, store.load(), spec.image_hashes).steps
                        if s.key == "scene/a/1")
        return step.action, step.reason

    assert scene_action()[0] == "done"
    write(folder, scenes=[{**scenes[0], "reference": SCENE_URL.replace("v=2", "v=3")}])
    assert scene_action() == ("changed", "changed: reference")


def test_an_unreachable_url_is_bria_s_460(folder: Path) -> None:
    path = write(folder, scenes=[{"name": "a", "prompt": "Luna",
                                  "reference": "https://gone.invalid/scene.png"}])
    sim = Simulator(SimConfig(**FAST))  # type: ignore[arg-type]
    with sim, pytest.raises(RunFailed) as caught:
        run_in_process(path, sim, folder / "s.sqlite")
    assert "HTTP 460: Failed to download image from https://gone.invalid/scene.png" in \
        caught.value.failures["scene/a/1"]
