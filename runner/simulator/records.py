"""The simulated world's resources, as mutable records (they change state over time).

How each record is shown to clients lives here too, so the field names and spellings
Bria uses are written down in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

LEGACY_VERSIONS = ("light", "max")


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Project:
    id: int
    project_name: str
    ip_type: str
    ip_medium: str
    ip_name: str | None
    ip_description: str | None
    project_description: str | None
    created: float
    training_version: str | None = None  # the family it is locked to by its first model

    def show(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_name": self.project_name,
            "project_description": self.project_description or "",
            "ip_name": self.ip_name,
            "ip_description": self.ip_description,
            "ip_medium": self.ip_medium,
            "ip_type": self.ip_type,
            "training_version": self.training_version,
            "status": "active",
            "created_at": iso(self.created),
            "updated_at": iso(self.created),
        }


@dataclass
class ImageRecord:
    id: int
    dataset_id: int
    image_name: str
    caption: str | None
    caption_source: str | None
    width: int
    height: int
    thumbnail: bytes = field(repr=False)
    created: float = 0.0

    def show(self, base_url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "dataset_id": self.dataset_id,
            "image_name": self.image_name,
            "caption": self.caption,
            "caption_source": self.caption_source,
            "upload_source_url": None,
            "image_url": f"{base_url}/__sim/files/images/{self.id}.png",
            "thumbnail_url": f"{base_url}/__sim/files/images/{self.id}.png",
            "created_at": iso(self.created),
            "updated_at": iso(self.created),
        }


@dataclass
class Dataset:
    id: int
    project_id: int
    name: str
    created: float
    status: str = "draft"  # draft | completed
    visual_schema: str | None = None
    caption_prefix: str | None = None
    image_ids: list[int] = field(default_factory=list)
    updated: float = 0.0

    def show(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_id": self.project_id,
            "name": self.name,
            "visual_schema": self.visual_schema,
            "caption_prefix": self.caption_prefix,
            "status": self.status,
            # Captions are written synchronously at upload here, so never "in_progress".
            "captions_update_status": "completed" if self.image_ids else "empty",
            "upload_type": "basic",
            "images_count": len(self.image_ids),
            "created_at": iso(self.created),
            "updated_at": iso(self.updated or self.created),
        }


@dataclass
class Model:
    id: int
    name: str
    dataset_id: int
    project_id: int
    training_mode: str
    training_version: str | None  # None = fibo
    description: str | None
    created: float
    training_started: float | None = None
    training_seconds: float = 0.0  # fixed when training starts
    will_fail: bool = False  # fixed when training starts
    training_parameters: dict[str, Any] = field(default_factory=dict)
    generation_prefix: str | None = None
    has_generated: bool = False  # the first job pays the cold start

    def status(self, now: float) -> str:
        """Created until started; InProgress for training_seconds; then Completed/Failed."""
        if self.training_started is None:
            return "Created"
        if now < self.training_started + self.training_seconds:
            return "InProgress"
        return "Failed" if self.will_fail else "Completed"

    def show(self, now: float) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "status": self.status(now),
            "training_mode": self.training_mode,
            "project_id": self.project_id,
            "dataset_id": self.dataset_id,
            "active_model_version": "default",
            "training_parameters": dict(self.training_parameters),
            "checkpoint_steps": [],
            "created_at": iso(self.created),
            "updated_at": iso(self.training_started or self.created),
        }
        if shown["status"] == "Failed":
            # Not in the published schema; the user's guide reads ``error_message``.
            shown["error_message"] = "Training failed: the simulator was told to fail it"
        if self.training_version in LEGACY_VERSIONS:
            shown["training_version"] = self.training_version
            shown["generation_prefix"] = self.generation_prefix
        return shown
