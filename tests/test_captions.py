"""Training images with their own captions: set with Bria's image-update endpoint after
upload; an edited caption re-sends only that caption before training, and after training it
is a training input change like any other."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from simrun import REPO

from runner.bria.client import BriaClient
from runner.display.reporters import QuietReporter
from runner.engine.context import Context, RunOptions
from runner.engine.executor import Engine
from runner.engine.plan import plan
from runner.engine.planned import Action
from runner.errors import PipelineInvalid, StaleModel
from runner.pipeline.loader import load_pipeline
from runner.simulator import SimConfig, Simulator
from runner.state.rows import ApiIdentity, StepKind
from runner.state.store import Store

EXAMPLE = REPO / "pipelines" / "luna"
FAST = {"training_seconds": 0.3, "generation_seconds": 0.05, "record_requests": True}
CAPTION_ROUTE = "PUT /v1/tailored-gen/datasets/{dataset_id}/images/{image_id}"
WAVE = {"action": "waving", "setting": "beach"}
CLOSE = {"framing": "close-up", "expression": "smiling"}


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLE / "training", tmp_path / "training")
    return tmp_path


def write(folder: Path, entries: list[Any], version: str = "fibo") -> Path:
    path = folder / "p.yaml"
    path.write_text(
        "version: 1\nname: captions\ncharacter:\n  name: Luna\n  description: girl with blue hair\n"
        f"  medium: illustration\n  images: {json.dumps(entries)}\n  identity_samples: 5\n"
        f"training: {{version: {version}}}\nscenes: [{{name: a, prompt: Luna}}]\n")
    return path


def run(path: Path, sim: Simulator, state: Path, *, until: StepKind | None = None,
        retrain: bool = False) -> None:
    """One run; ``until``: stop before the first step of that kind (a run cut short)."""
    pipeline, _ = load_pipeline(path)
    with BriaClient(sim.base_url, sim.config.token, rpm=None) as client, \
            Store.open(state, ApiIdentity("simulated", sim.world_id)) as store:
        the_plan = plan(pipeline, store.load(), pipeline.image_hashes, retrain=retrain)
        if until is not None:
            kinds = [s.kind for s in the_plan.steps]
            the_plan = dataclasses.replace(the_plan, steps=the_plan.steps[:kinds.index(until)])
        ctx = Context(pipeline, the_plan, store, client, QuietReporter(),
                      RunOptions(poll_every=0.05, job_poll=0.05),
                      hashes=dict(pipeline.image_hashes))
        Engine(ctx).run()


def caption_puts(sim: Simulator) -> list[dict[str, Any]]:
    return [b for k, b in sim.requests if k == CAPTION_ROUTE]


def entries(wave: dict[str, Any] = WAVE) -> list[Any]:
    return ["training/", {"file": "training/03-wave.png", "caption": wave},
            {"file": "training/08-close-up.png", "caption": json.dumps(CLOSE)}]


def test_captions_are_set_after_upload_and_recorded(folder: Path) -> None:
    with Simulator(SimConfig(**FAST)) as sim:  # type: ignore[arg-type]
        run(write(folder, entries()), sim, folder / "s.sqlite")
        puts = caption_puts(sim)
        images = {i.image_name: i for i in sim.world.images.values()}
    # a mapping goes out as JSON text; a string as the user wrote it
    assert sorted(p["caption"] for p in puts) == sorted(
        [json.dumps(WAVE, sort_keys=True), json.dumps(CLOSE)])
    manual = {name.split("-")[1]: i.caption for name, i in images.items()
              if i.caption_source == "manual"}
    assert manual == {"wave": json.dumps(WAVE, sort_keys=True),
                      "close": json.dumps(CLOSE)}
    assert len(images) == 10  # the folder and the captioned entries name each image once
    with Store.open(folder / "s.sqlite", None) as store:
        recorded = store.load()
    steps = [k for k in recorded.steps if k.startswith("caption/")]
    assert len(steps) == 2 and all(recorded.current(k).status == "done" for k in steps)


def test_an_edited_caption_before_training_resends_only_that_caption(folder: Path) -> None:
    state = folder / "s.sqlite"
    with Simulator(SimConfig(**FAST)) as sim:  # type: ignore[arg-type]
        run(write(folder, entries()), sim, state, until=StepKind.COMPLETE)
        assert len(caption_puts(sim)) == 2
        sim.requests.clear()
        path = write(folder, entries({"action": "waving", "setting": "forest"}))
        pipeline, _ = load_pipeline(path)
        with Store.open(state, None) as store:
            work = [s for s in plan(pipeline, store.load(), pipeline.image_hashes).steps
                    if s.is_work and s.kind != StepKind.SCENE]
        assert [(s.key.split("-")[1] if "/" in s.key else s.key, s.action) for s in work] == [
            ("wave", Action.CHANGED), ("complete", Action.CREATE), ("model", Action.CREATE),
            ("train", Action.CREATE)]
        run(path, sim, state)
        sent = [(k, b) for k, b in sim.requests if k.startswith(("POST", "PUT"))
                and "/v2/" not in k]
    assert [b["caption"] for k, b in sent if k == CAPTION_ROUTE] == [
        json.dumps({"action": "waving", "setting": "forest"}, sort_keys=True)]
    assert not [k for k, _ in sent if k.endswith(("/images", "/datasets"))]


def test_an_edited_caption_after_training_makes_the_model_stale(folder: Path) -> None:
    state = folder / "s.sqlite"
    with Simulator(SimConfig(**FAST)) as sim:  # type: ignore[arg-type]
        run(write(folder, entries()), sim, state)
        path = write(folder, entries({"action": "jumping"}))
        with pytest.raises(StaleModel) as caught:
            run(path, sim, state)
        assert "captions" in str(caught.value)
        sim.requests.clear()
        run(path, sim, state, retrain=True)  # a new dataset: Bria refuses edits on a completed one
        keys = [k for k, _ in sim.requests]
    assert keys.count("POST /v1/tailored-gen/datasets") == 1
    assert keys.count(CAPTION_ROUTE) == 2
    assert keys.count("POST /v1/tailored-gen/models/{id}/start_training") == 1


def test_a_removed_caption_lets_bria_write_its_own_again(folder: Path) -> None:
    state = folder / "s.sqlite"
    with Simulator(SimConfig(**FAST)) as sim:  # type: ignore[arg-type]
        run(write(folder, entries()), sim, state, until=StepKind.COMPLETE)
        sim.requests.clear()
        run(write(folder, entries()[:2]), sim, state)
        assert caption_puts(sim) == [{"regenerate_caption": True}]


@pytest.mark.parametrize(("entry", "version", "message"), [
    ({"file": "training/03-wave.png", "caption": "waving"}, "fibo",
     "character.images[1].caption: a fibo caption must be a JSON object"),
    ({"file": "training/03-wave.png", "caption": {"a": 1}}, "light",
     "character.images[1].caption: light captions are plain text"),
    ({"file": "training/", "caption": "{}"}, "fibo",
     ("character.images[1].file: `training/` is a folder; an entry with a caption names one "
     "image")),
    ({"file": "training/*.png", "caption": "{}"}, "fibo",
     "character.images[1].file: `training/*.png` is a glob"),
], ids=["fibo-text", "legacy-mapping", "folder", "glob"])
def test_bad_caption_entries(folder: Path, entry: dict[str, Any], version: str,
                             message: str) -> None:
    with pytest.raises(PipelineInvalid) as caught:
        load_pipeline(write(folder, ["training/", entry], version))
    shown = [f"{p.path}: {p.message}" for p in caught.value.errors]
    assert any(line.startswith(message) for line in shown), shown


def test_a_legacy_caption_is_plain_text(folder: Path) -> None:
    spec, _ = load_pipeline(write(folder, ["training/", {"file": "training/03-wave.png",
                                                         "caption": "waving hello"}], "light"))
    assert [text for _, text in spec.character.captions] == ["waving hello"]
