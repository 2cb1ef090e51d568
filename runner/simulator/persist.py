"""Saving and loading the simulated world as one JSON file, atomically.

``bria-run --simulate`` keeps its simulated Bria here, so a resumed run finds its
projects, datasets, models and jobs again. Times are stored as they are (clock values),
so a training keeps going across restarts. Thumbnails and scenes are base64.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections import Counter
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, TypeVar

from runner.simulator.config import SimConfig
from runner.simulator.jobs import Job
from runner.simulator.records import Dataset, ImageRecord, Model, Project
from runner.simulator.world import World

FORMAT = 1
T = TypeVar("T")


def dump(world: World) -> dict[str, Any]:
    images = []
    for image in world.images.values():
        row = asdict(image)
        row["thumbnail"] = base64.b64encode(image.thumbnail).decode("ascii")
        images.append(row)
    return {
        "format": FORMAT,
        "world_id": world.world_id,
        "next_ids": world.next_ids,
        "projects": [asdict(p) for p in world.projects.values()],
        "datasets": [asdict(d) for d in world.datasets.values()],
        "images": images,
        "models": [asdict(m) for m in world.models.values()],
        "jobs": [asdict(j) for j in world.jobs.values()],
        "scenes": {k: base64.b64encode(v).decode("ascii") for k, v in world.scenes.items()},
        "credits": world.accounts.credits,
        "created": dict(world.accounts.created),
        "names": dict(world.accounts.names),
    }


def load(config: SimConfig, data: dict[str, Any]) -> World:
    if data.get("format") != FORMAT:
        raise ValueError(f"unknown simulator state format {data.get('format')!r}")
    world = World(config, world_id=data["world_id"])
    world.next_ids.update(data["next_ids"])
    world.projects = {r["id"]: build(Project, r) for r in data["projects"]}
    world.datasets = {r["id"]: build(Dataset, r) for r in data["datasets"]}
    for row in data["images"]:
        row = {**row, "thumbnail": base64.b64decode(row["thumbnail"])}
        world.images[row["id"]] = build(ImageRecord, row)
    world.models = {r["id"]: build(Model, r) for r in data["models"]}
    world.jobs = {r["request_id"]: build(Job, r) for r in data["jobs"]}
    world.scenes = {k: base64.b64decode(v) for k, v in data["scenes"].items()}
    world.accounts.credits = data["credits"]
    world.accounts.created = Counter(data["created"])
    world.accounts.names = Counter(data["names"])
    return world


def build(kind: type[T], row: dict[str, Any]) -> T:
    known = {f.name for f in fields(kind)}  # type: ignore[arg-type]
    return kind(**{k: v for k, v in row.items() if k in known})


def save(world: World, path: Path) -> None:
    """Write the world to ``path`` atomically (temp file in the same folder + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(dump(world), out)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def open_world(config: SimConfig) -> World:
    """The persisted world when ``config.persist_path`` exists, else a new one."""
    path = config.persist_path
    if path is not None and path.exists():
        return load(config, json.loads(path.read_text(encoding="utf-8")))
    return World(config)
