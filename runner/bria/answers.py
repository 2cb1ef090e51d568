"""Reading Bria's answers and building its request values, kept apart from the calls.

Bria's answers vary in small ways between endpoints and API generations (a list endpoint
may answer an array or wrap it; the legacy prefix key is not fixed). These functions accept
the known shapes and report anything else as an ApiError instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from runner.bria.errors import ApiError, JobFailed, JobUnknown
from runner.bria.inline import InlineFile

# Bria's spellings, exactly (the contract pins them; tests/test_contract.py checks them).
MODEL_STATUSES = ("Created", "InProgress", "Completed", "Failed", "Stopping", "Stopped")
MODEL_ACTIVE = ("Created", "InProgress", "Stopping")
DATASET_STATUSES = ("draft", "completed")
JOB_STATUSES = ("IN_PROGRESS", "COMPLETED", "ERROR", "UNKNOWN")
JOB_NOT_FOUND = "NOT_FOUND"
IP_MEDIUMS = ("photography", "illustration")
TRAINING_MODES = ("fully_automated", "expert")
TRAINING_VERSIONS = ("light", "max")  # legacy; fibo models are created without one
ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9")
GUIDANCE_METHODS = (
    "controlnet_canny",
    "controlnet_depth",
    "controlnet_recoloring",
    "controlnet_color_grid",
)


@dataclass(frozen=True)
class Job:
    """Bria's answer to a v2 async submit (202)."""

    request_id: str
    status_url: str | None


@dataclass(frozen=True)
class JobStatus:
    status: str  # IN_PROGRESS | COMPLETED | ERROR | UNKNOWN
    result: dict[str, Any] | None = None  # COMPLETED: {"image_url", "seed", "structured_prompt"}
    error: dict[str, Any] | None = None

    def outcome(self, request_id: str) -> dict[str, Any] | None:
        """The result when COMPLETED, None while IN_PROGRESS; ERROR raises JobFailed and
        anything else (UNKNOWN) JobUnknown."""
        if self.status == "COMPLETED":
            return self.result or {}
        if self.status == "ERROR":
            raise JobFailed(request_id, job_error_text(self.error))
        if self.status != "IN_PROGRESS":
            raise JobUnknown(request_id, self.status)
        return None


# An image the client sends: a file (sent inline as base64) or an https:// URL (a str),
# which Bria fetches itself; bria-run never downloads it.
ImageSource = Path | str


def image_field(image: ImageSource) -> InlineFile | str:
    """The JSON value for one image: the URL text as it is, or the file inline."""
    return image if isinstance(image, str) else encode_image(image)


def encode_image(path: Path) -> InlineFile:
    """One image file for a JSON field: sent as base64, read and encoded in chunks only
    while the request goes out (runner.bria.inline)."""
    return InlineFile(Path(path))


def json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json() if response.content else None
    except ValueError:
        return None


def as_dict(found: Any) -> dict[str, Any]:
    return found if isinstance(found, dict) else {}


def as_list(found: Any, key: str) -> list[dict[str, Any]]:
    """List endpoints answer a JSON array; tolerate ``{key: [...]}`` or ``{"data": [...]}``."""
    if isinstance(found, dict):
        found = found.get(key, found.get("data", []))
    return list(found) if isinstance(found, list) else []


def text_field(path: str, status: int, found: Any, *keys: str) -> str:
    """The text Bria answered: a bare JSON string, or the first of ``keys`` present."""
    if isinstance(found, str):
        return found
    if isinstance(found, dict):
        for key in keys:
            if isinstance(found.get(key), str):
                return str(found[key])
    raise odd_answer(path, status, found, " or ".join(keys))


def submitted_job(path: str, status: int, found: Any) -> Job:
    body = as_dict(found)
    if not body.get("request_id"):
        raise odd_answer(path, status, found, "request_id")
    return Job(str(body["request_id"]), body.get("status_url"))


def odd_answer(path: str, status: int, found: Any, wanted: str) -> ApiError:
    """A 2xx answer without the field the contract promises: report it, never guess."""
    return ApiError(status, "POST", path, f"the answer has no {wanted}", found)


def results(found: Any) -> list[dict[str, Any]]:
    return as_list(found, "result")


def job_error_text(error: dict[str, Any] | None) -> str:
    if not error:
        return ""
    return str(error.get("message") or error.get("code") or error)

