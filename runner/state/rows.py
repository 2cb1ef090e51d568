"""What the state holds, as types: step kinds and statuses, intent outcomes, and the rows
the engine and the planner read. A value outside these enums is a type error, and a stored one
is refused when it is read back.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class StepKind(StrEnum):
    PROJECT = "project"
    DATASET = "dataset"
    IDENTITY = "identity"
    UPLOAD = "upload"
    CAPTION = "caption"  # an image's own caption, set after its upload
    COMPLETE = "complete"
    MODEL = "model"
    TRAIN = "train"
    SCENE = "scene"


class StepStatus(StrEnum):
    PENDING = "pending"  # planned, never begun (shown by status; never stored by a run)
    RUNNING = "running"  # begun and not finished: a crash or Ctrl-C left it open
    DONE = "done"
    FAILED = "failed"


class FileState(StrEnum):
    """Whether a recorded output file still holds what was recorded."""

    OK = "ok"
    MISSING = "missing"
    ALTERED = "altered"  # its content no longer matches the recorded sha256


class IntentOutcome(StrEnum):
    """What became of a POST (``None`` in the table while the outcome is unknown)."""

    LANDED = "landed"  # answered with an id
    RECONCILED = "reconciled"  # the answer was lost; the list endpoints found what it made
    REJECTED = "rejected"  # nothing was made: a refusal (4xx, 429, 500, 503), or never sent
    UNANSWERED = "unanswered"  # no answer and no list endpoint to ask: sent again
    ABSENT = "absent"  # no answer, and the list endpoints show nothing was made
    SUPERSEDED = "superseded"  # landed, but its result was lost; a new intent replaces it
    ADOPTED = "adopted"  # never sent: Bria already had it under its deterministic name


@dataclass(frozen=True)
class ApiIdentity:
    """Which API a state belongs to: a simulated world never shares state with Bria."""

    kind: str  # "real" | "simulated"
    where: str  # base URL, or the simulated world's id

    def describe(self) -> str:
        return f"the simulator (world {self.where})" if self.kind == "simulated" else self.where


@dataclass(frozen=True)
class StepRow:
    id: int
    key: str
    kind: StepKind
    fingerprint: str
    status: StepStatus
    is_current: bool
    remote_id: str | None
    outputs_raw: str | dict[str, Any] | None  # JSON text as stored; decoded on first use
    attempts: int
    error: str | None
    started_at: float | None
    finished_at: float | None

    @functools.cached_property
    def outputs(self) -> dict[str, Any]:
        # Lazy: resuming a long history reads thousands of rows whose outputs nobody needs.
        raw = self.outputs_raw
        return raw if isinstance(raw, dict) else load_json(raw)


@dataclass(frozen=True)
class IntentRow:
    id: int
    step_id: int
    op: str
    remote_id: str | None
    data: dict[str, Any]
    outcome: IntentOutcome | None


@dataclass(frozen=True)
class ArtifactRow:
    id: int
    step_id: int
    scene: str
    variation: int
    path: str
    sha256: str
    seed: int | None
    source: str | None
    is_current: bool
    size: int | None = None  # bytes, as written
    created_at: float | None = None  # when it was recorded (the file was written just before)


@dataclass
class Recorded:
    """Everything the planner needs from the state, read in one go."""

    steps: dict[str, list[StepRow]] = field(default_factory=dict)  # key -> rows, newest last
    artifacts: list[ArtifactRow] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    paid: list[IntentRow] = field(default_factory=list)  # read by `status` only (paid_intents)

    def current(self, key: str) -> StepRow | None:
        rows = [r for r in self.steps.get(key, ()) if r.is_current]
        return rows[-1] if rows else None

    def find(self, key: str, fingerprint: str) -> StepRow | None:
        for row in self.steps.get(key, ()):
            if row.fingerprint == fingerprint:
                return row
        return None


def load_json(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


def step_from(step_id: int, values: dict[str, Any]) -> StepRow:
    return StepRow(
        id=step_id, key=values["key"], kind=StepKind(values["kind"]),
        fingerprint=values["fingerprint"], status=StepStatus(values["status"]), is_current=True, remote_id=None, outputs_raw=None,
        attempts=values["attempts"], error=None, started_at=values["started_at"],
        finished_at=None,
    )


# Members by value: a resume reads thousands of rows, and Enum(value) costs microseconds each.
_KINDS = {k.value: k for k in StepKind}
_STATUSES = {s.value: s for s in StepStatus}


def step_row(row: Any) -> StepRow:
    """A state row as a StepRow; a kind or status outside the enums raises ValueError."""
    return StepRow(
        id=row.id, key=row.key, kind=_KINDS.get(row.kind) or StepKind(row.kind),
        fingerprint=row.fingerprint, status=_STATUSES.get(row.status) or StepStatus(row.status),
        is_current=bool(row.is_current), remote_id=row.remote_id, outputs_raw=row.outputs,
        attempts=row.attempts, error=row.error, started_at=row.started_at,
        finished_at=row.finished_at,
    )


def intent_row(row: Any) -> IntentRow:
    return IntentRow(
        id=row.id, step_id=row.step_id, op=row.op, remote_id=row.remote_id,
        data=load_json(row.data),
        outcome=None if row.outcome is None else IntentOutcome(row.outcome),
    )


def artifact_row(row: Any) -> ArtifactRow:
    return ArtifactRow(
        id=row.id, step_id=row.step_id, scene=row.scene, variation=row.variation, path=row.path,
        sha256=row.sha256, seed=row.seed, source=row.source, is_current=bool(row.is_current),
        size=row.bytes, created_at=row.created_at,
    )


@dataclass(frozen=True)
class PipelineKey:
    """How a database that holds many pipelines knows one: its name and the file's path
    inside its project (``pipelines/luna.yaml``), the same on every machine's checkout."""

    name: str
    file: str
