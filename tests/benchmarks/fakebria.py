"""An in-process Bria that answers at once: S2 measures the engine's own cost per step
(planning, checkpoints, bookkeeping, output files) without HTTP in the way."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Any, BinaryIO

from runner.bria.answers import Job, JobStatus
from runner.bria.limiter import RateLimiter

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


class FakeBria:
    def __init__(self) -> None:
        self.limiter = RateLimiter(None)
        self._ids = itertools.count(1)
        self.calls = 0
        self._uploaded: dict[int, list[dict[str, Any]]] = {}

    def backoff(self, retry: int) -> float:
        return 0.0

    def stats(self) -> dict[str, dict[str, float]]:
        return {}

    def waited_here(self) -> float:
        return 0.0

    def _new(self, **fields: Any) -> dict[str, Any]:
        self.calls += 1
        return {"id": next(self._ids), **fields}

    def create_project(self, **body: Any) -> dict[str, Any]:
        return self._new(**body)

    def create_dataset(self, **body: Any) -> dict[str, Any]:
        return self._new(**body)

    def create_model(self, **body: Any) -> dict[str, Any]:
        return self._new(**body)

    def upload_image(self, dataset_id: int, path: Path, **body: Any) -> dict[str, Any]:
        image = self._new(**body)
        self._uploaded.setdefault(dataset_id, []).append(image)
        return image

    def list_projects(self) -> list[dict[str, Any]]:
        return []  # a fresh organisation: nothing to adopt by name

    def list_datasets(self, project_id: int) -> list[dict[str, Any]]:
        return []

    def list_models(self, project_id: int) -> list[dict[str, Any]]:
        return []

    def list_images(self, dataset_id: int) -> list[dict[str, Any]]:
        """What the engine compares with its plan before completing and training."""
        return list(self._uploaded.get(dataset_id, []))

    def generate_visual_schema(self, images: list[Path]) -> str:
        return "{}"

    def update_dataset(self, dataset_id: int, **fields: Any) -> dict[str, Any]:
        return {"id": dataset_id, **fields}

    def get_dataset(self, dataset_id: int) -> dict[str, Any]:
        return {"id": dataset_id, "status": "draft"}

    def get_model(self, model_id: int) -> dict[str, Any]:
        return {"id": model_id, "status": "Completed" if self.calls > 1 else "Created"}

    def start_training(self, model_id: int, **expert: Any) -> dict[str, Any]:
        self.calls += 1
        return {"status": "InProgress"}

    def generate_tailored(self, **body: Any) -> Job:
        self.calls += 1
        return Job(f"req-{next(self._ids)}", None)

    def get_status(self, request_id: str) -> JobStatus:
        return JobStatus("COMPLETED", {"image_url": f"http://fake/{request_id}.png", "seed": 1})

    def download(self, url: str, out: BinaryIO) -> str:
        out.write(PNG)
        return hashlib.sha256(PNG).hexdigest()
