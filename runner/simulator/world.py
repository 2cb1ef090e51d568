"""The simulated Bria world: projects, datasets, images and models, and their rules.

Pure and clock-driven: no HTTP, no threads. Every operation takes the decoded request
body and returns the answer body, or raises ``SimError`` with Bria's status and body.
Time only enters through ``clock``, so state machines are tested with a fake clock and
a training keeps going across restarts (its start time is stored, not a timer).
Generation jobs live in ``jobs.py`` and operate on this same world.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runner.simulator import images as pictures
from runner.simulator.answers import (
    SimError,
    field_error,
    integer_id,
    message,
    number_in,
    one_of,
    required,
)
from runner.simulator.config import SimConfig
from runner.simulator.records import LEGACY_VERSIONS, Dataset, ImageRecord, Model, Project

IP_TYPES = (
    "multi_object_set", "object_variants", "icons", "defined_character",
    "character_variants", "stylized_scene", "other",
)
ILLUSTRATION_ONLY = ("multi_object_set", "object_variants", "icons", "character_variants")
IP_MEDIUMS = ("photography", "illustration")
TRAINING_MODES = ("fully_automated", "expert")
MAX_IMAGES = 200
# Bria's current docs: a fibo dataset (one with a visual schema) needs 5 images to be
# completed; the legacy guide's datasets (caption prefix) need 1.
FIBO_MIN_IMAGES, LEGACY_MIN_IMAGES = 5, 1
TRAINING_CREDITS, IMAGE_CREDITS = 80, 3
EXPERT_BOUNDS: dict[str, tuple[float, float | None]] = {
    "learning_rate": (0.000001, 0.001), "total_training_steps": (1, 5000),
    "rank": (4, 256), "checkpoint_interval": (100, None), "lr_warmup_steps": (0, 1000),
}
LR_SCHEDULERS = (
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
)


@dataclass
class Accounts:
    """What the simulator charged and created, and what was created twice."""

    credits: int = 0
    created: Counter[str] = field(default_factory=Counter)
    names: Counter[str] = field(default_factory=Counter)  # "kind|scope|name" -> times created

    def record(self, kind: str, scope: object, name: str) -> None:
        self.created[kind] += 1
        self.names[f"{kind}|{scope}|{name}"] += 1

    def duplicates(self) -> dict[str, int]:
        found = dict.fromkeys(("projects", "datasets", "images", "models", "generations"), 0)
        for key, times in self.names.items():
            found[key.split("|", 1)[0]] += times - 1
        return found


class World:
    """All resources of one simulated organisation."""

    def __init__(self, config: SimConfig, *, world_id: str | None = None) -> None:
        self.config = config
        self.world_id = world_id or str(uuid.uuid4())
        self.base_url = "http://127.0.0.1"  # set by the server once it has a port
        self.projects: dict[int, Project] = {}
        self.datasets: dict[int, Dataset] = {}
        self.images: dict[int, ImageRecord] = {}
        self.models: dict[int, Model] = {}
        self.jobs: dict[str, Any] = {}  # request id -> jobs.Job
        self.scenes: dict[str, bytes] = {}  # sha256 -> scene reference (JPEG, small)
        self.accounts = Accounts()
        # Separate ranges per kind, so an id of the wrong kind is a 404, as it would be.
        self.next_ids = {"project": 101, "dataset": 2001, "image": 30001, "model": 4001}

    @property
    def clock(self) -> Callable[[], float]:
        return self.config.clock

    def new_id(self, kind: str) -> int:
        self.next_ids[kind] += 1
        return self.next_ids[kind] - 1

    # --- lookups ------------------------------------------------------------------------

    def project(self, project_id: int) -> Project:
        if project_id not in self.projects:
            raise message(404, f"Project {project_id} not found")
        return self.projects[project_id]

    def dataset(self, dataset_id: int) -> Dataset:
        if dataset_id not in self.datasets:
            raise message(404, f"Dataset {dataset_id} not found")
        return self.datasets[dataset_id]

    def model(self, model_id: int) -> Model:
        if model_id not in self.models:
            raise message(404, f"Model {model_id} not found")
        return self.models[model_id]

    # --- projects -----------------------------------------------------------------------

    def create_project(self, body: dict[str, Any]) -> dict[str, Any]:
        name = required(body, "project_name")
        ip_type = one_of(body, "ip_type", IP_TYPES)
        ip_medium = one_of(body, "ip_medium", IP_MEDIUMS)
        required(body, "ip_type"), required(body, "ip_medium")
        check_ip_fields(body, ip_type, ip_medium)
        project = Project(
            self.new_id("project"), name, ip_type, ip_medium, body.get("ip_name"),
            body.get("ip_description"), body.get("project_description"), self.clock(),
        )
        self.projects[project.id] = project
        self.accounts.record("projects", "", name)
        return project.show()

    def list_projects(self) -> list[dict[str, Any]]:
        return [p.show() for p in self.projects.values()]

    def delete_project(self, project_id: int) -> None:
        self.project(project_id)
        now = self.clock()
        owned = [m for m in self.models.values() if m.project_id == project_id]
        if any(m.status(now) == "InProgress" for m in owned):
            raise message(409, "Cannot delete a project while one of its models is training")
        for model in owned:
            del self.models[model.id]
        for dataset in [d for d in self.datasets.values() if d.project_id == project_id]:
            self._drop_dataset(dataset)
        del self.projects[project_id]

    # --- datasets -----------------------------------------------------------------------

    def create_dataset(self, body: dict[str, Any]) -> dict[str, Any]:
        project = self.project(integer_id(body, "project_id"))
        name = required(body, "name")
        now = self.clock()
        dataset = Dataset(self.new_id("dataset"), project.id, name, now, updated=now)
        self.datasets[dataset.id] = dataset
        self.accounts.record("datasets", project.id, name)
        return dataset.show()

    def list_datasets(self, project_id: int) -> list[dict[str, Any]]:
        self.project(project_id)
        return [d.show() for d in self.datasets.values() if d.project_id == project_id]

    def get_dataset(self, dataset_id: int) -> dict[str, Any]:
        dataset = self.dataset(dataset_id)
        return {**dataset.show(), "images": self.list_images(dataset_id)}

    def update_dataset(self, dataset_id: int, body: dict[str, Any]) -> dict[str, Any]:
        dataset = self.dataset(dataset_id)
        status = one_of(body, "status", ("draft", "completed"))
        edits = {k: body[k] for k in ("visual_schema", "caption_prefix", "name") if k in body}
        if dataset.status == "completed" and (edits or status == "draft"):
            raise message(409, f"Dataset {dataset.id} is completed and can no longer be changed")
        for key, value in edits.items():
            if not isinstance(value, str):
                raise field_error(key, f"{key} must be a string", value)
            setattr(dataset, key, value)
        if status == "completed":
            self._complete(dataset)
        dataset.updated = self.clock()
        return dataset.show()

    def _complete(self, dataset: Dataset) -> None:
        needed = FIBO_MIN_IMAGES if dataset.visual_schema else LEGACY_MIN_IMAGES
        if len(dataset.image_ids) < needed:
            raise message(
                409, f"Dataset needs at least {needed} images to be completed "
                f"(it has {len(dataset.image_ids)})",
            )
        dataset.status = "completed"

    def delete_dataset(self, dataset_id: int) -> None:
        dataset = self.dataset(dataset_id)
        now = self.clock()
        users = [m for m in self.models.values() if m.dataset_id == dataset_id]
        if any(m.status(now) == "InProgress" for m in users):
            raise message(409, "Cannot delete a dataset that is used by a model in training")
        self._drop_dataset(dataset)

    def _drop_dataset(self, dataset: Dataset) -> None:
        for image_id in dataset.image_ids:
            self.images.pop(image_id, None)
        del self.datasets[dataset.id]

    # --- images -------------------------------------------------------------------------

    def upload_image(self, dataset_id: int, body: dict[str, Any]) -> dict[str, Any]:
        dataset = self.dataset(dataset_id)
        if dataset.status == "completed":
            raise message(409, f"Dataset {dataset.id} is completed; no more images can be added")
        if len(dataset.image_ids) >= MAX_IMAGES:
            raise message(409, f"Dataset {dataset.id} already has the maximum of {MAX_IMAGES} images")
        picture = self._read_upload(body)
        image_id = self.new_id("image")
        name = body.get("image_name") or f"image_{image_id}.{picture.format}"
        caption, source = self._caption(dataset, name)
        record = ImageRecord(
            image_id, dataset.id, name, caption, source, picture.width, picture.height,
            picture.thumbnail, self.clock(),
        )
        self.images[image_id] = record
        dataset.image_ids.append(image_id)
        self.accounts.record("images", dataset.id, name)
        return record.show(self.base_url)

    def _read_upload(self, body: dict[str, Any]) -> pictures.Picture:
        if body.get("file") is None:
            if body.get("image_url"):
                data = pictures.fetched(str(body["image_url"]))  # drawn, never fetched
            else:
                raise field_error("file", "file or image_url is required")
        else:
            data = pictures.decode_b64(body["file"], "file")
        picture = pictures.read_picture(data)
        pictures.check_resolution(picture, increase_resolution=body.get("increase_resolution", True))
        if body.get("content_moderation") and self.is_moderated(body.get("image_name") or ""):
            raise message(422, "Image failed content moderation")
        return picture

    def _caption(self, dataset: Dataset, name: str) -> tuple[str | None, str | None]:
        """Bria captions at upload with the dataset's identity; none without one."""
        if dataset.visual_schema:
            return f'{{"subject": "{name}", "style": "as in the visual schema"}}', "automatic"
        if dataset.caption_prefix:
            return f"{dataset.caption_prefix} {name}", "automatic"
        return None, None

    def update_image(self, dataset_id: int, image_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """PUT .../images/{image_id}: a manual caption, or ``regenerate_caption``."""
        dataset = self.dataset(dataset_id)
        record = self.images.get(image_id)
        if record is None or record.dataset_id != dataset.id:
            raise message(404, f"Image {image_id} not found in dataset {dataset.id}")
        if dataset.status == "completed":
            raise message(409, f"Dataset {dataset.id} is completed; captions cannot change")
        caption, regenerate = body.get("caption"), bool(body.get("regenerate_caption"))
        if (caption is None) == (not regenerate):
            raise message(400, "Provide either caption or regenerate_caption, not both")
        if regenerate:
            record.caption, record.caption_source = self._caption(dataset, record.image_name)
        else:
            # Bria: "a string containing a valid JSON structure" (captions written from a
            # visual schema). A legacy dataset's captions continue its prefix as plain text.
            if dataset.visual_schema and not _is_json_object(str(caption)):
                raise field_error("caption", "caption must be a valid JSON structure", caption)
            record.caption, record.caption_source = str(caption), "manual"
        return record.show(self.base_url)

    def list_images(self, dataset_id: int) -> list[dict[str, Any]]:
        dataset = self.dataset(dataset_id)
        return [self.images[i].show(self.base_url) for i in dataset.image_ids]

    def is_moderated(self, text: str) -> bool:
        lowered = text.lower()
        return any(word.lower() in lowered for word in self.config.moderation_words)

    # --- models and training ------------------------------------------------------------

    def create_model(self, body: dict[str, Any]) -> dict[str, Any]:
        name = required(body, "name")
        dataset = self.dataset(integer_id(body, "dataset_id"))
        mode = one_of(body, "training_mode", TRAINING_MODES, "fully_automated")
        version = one_of(body, "training_version", LEGACY_VERSIONS)
        if version is None and not dataset.visual_schema:
            # A fibo model is trained on captions written from the visual schema.
            raise message(400, f"Dataset {dataset.id} has no visual_schema; fibo models need one")
        self._lock_family(self.project(dataset.project_id), version)
        model = Model(
            self.new_id("model"), name, dataset.id, dataset.project_id, mode, version,
            body.get("description"), self.clock(),
        )
        if version is not None:
            model.generation_prefix = dataset.caption_prefix
        self.models[model.id] = model
        self.accounts.record("models", dataset.project_id, name)
        return model.show(self.clock())

    def _lock_family(self, project: Project, version: str | None) -> None:
        """Bria locks a project to the training family of its first model."""
        family = version or "fibo"
        if project.training_version is None:
            project.training_version = family
        elif project.training_version != family:
            raise message(
                400, f"Project {project.id} is locked to training version "
                f"{project.training_version}; create a new project for {family}",
            )

    def list_models(self, project_id: int | None = None) -> list[dict[str, Any]]:
        if project_id is not None:
            self.project(project_id)
        now = self.clock()
        return [
            m.show(now) for m in self.models.values()
            if project_id is None or m.project_id == project_id
        ]

    def start_training(self, model_id: int, body: dict[str, Any]) -> dict[str, Any]:
        model = self.model(model_id)
        if model.training_started is not None:
            raise message(409, f"Training of model {model.id} already started/cannot be resumed")
        if self.dataset(model.dataset_id).status != "completed":
            raise message(412, "Dataset status must be 'completed' to start training")
        model.training_parameters = expert_parameters(model, body)
        model.training_started = self.clock()
        model.training_seconds = self.config.training_seconds
        model.will_fail = self.config.fail_training
        self.accounts.credits += TRAINING_CREDITS
        self.accounts.created["trainings_started"] += 1
        return model.show(model.training_started)

    def delete_model(self, model_id: int) -> None:
        model = self.model(model_id)
        if model.status(self.clock()) == "InProgress":
            raise message(409, "Cannot delete a model that is currently in training")
        del self.models[model_id]


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def check_ip_fields(body: dict[str, Any], ip_type: str, ip_medium: str) -> None:
    if ip_type in ILLUSTRATION_ONLY and ip_medium != "illustration":
        raise field_error("ip_type", f"{ip_type} is only available with ip_medium illustration",
                          ip_type)
    if ip_type == "defined_character":
        name = required(body, "ip_name")
        if not 1 <= len(str(name).split()) <= 3:
            raise field_error("ip_name", "ip_name must be 1-3 words", name)
    if ip_type in ("defined_character", "object_variants"):
        description = required(body, "ip_description")
        if len(str(description).split()) > 6:
            raise field_error("ip_description", "ip_description must be at most 6 words",
                              description)


def expert_parameters(model: Model, body: dict[str, Any]) -> dict[str, Any]:
    given = {k: v for k, v in body.items() if v is not None}
    if given and model.training_mode != "expert":
        raise message(400, "Training parameters are only supported in expert training mode")
    unknown = sorted(set(given) - set(EXPERT_BOUNDS) - {"lr_scheduler"})
    if unknown:
        raise field_error(unknown[0], f"unknown training parameter {unknown[0]}", given[unknown[0]])
    for key, (low, high) in EXPERT_BOUNDS.items():
        number_in(given, key, low, high)
    one_of(given, "lr_scheduler", LR_SCHEDULERS)
    defaults = {
        "rank": 128, "learning_rate": 0.0001, "lr_scheduler": "constant_with_warmup",
        "total_training_steps": 750, "checkpoint_interval": 500, "lr_warmup_steps": 100,
    }
    return {**defaults, **given}


__all__ = ["Accounts", "SimError", "World"]
