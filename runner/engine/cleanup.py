"""`bria-run clean`: which remote resources of a pipeline nothing uses any more, and their
deletion.

Only what this pipeline's state records is ever a candidate (resources it created, or
adopted under its own deterministic names), and only datasets and models the plan no longer
uses: those superseded by a retrain, and models whose training failed. Never the model or
dataset in use (the plan's, and the rows in use now, so a stale model the user may still
keep is safe), never a project (it holds what is in use), never a training in progress.
What was deleted is recorded in the state's meta, so a second `clean` finds nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runner.bria.errors import Conflict, NotFound
from runner.engine.planned import Plan
from runner.state.rows import Recorded, StepStatus

if TYPE_CHECKING:
    from runner.bria.client import BriaClient

CLEANED = "cleaned"  # meta: JSON list of "kind:id" deleted (or found gone) by `clean`


@dataclass(frozen=True)
class Leftover:
    kind: str  # "model" | "dataset"
    remote_id: int
    name: str | None
    why: str

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.remote_id}"

    def describe(self) -> str:
        named = f" ({self.name})" if self.name else ""
        return f"{self.kind} {self.remote_id}{named}: {self.why}"


def cleaned(recorded: Recorded) -> set[str]:
    try:
        found = json.loads(recorded.meta.get(CLEANED, "[]"))
    except ValueError:
        return set()
    return {str(x) for x in found} if isinstance(found, list) else set()


def in_use(the_plan: Plan, recorded: Recorded) -> set[str]:
    """The resources the plan uses, and those of the rows in use now."""
    used: set[str] = set()
    if the_plan.pipeline.training.model_id is not None:
        used.add(f"model:{the_plan.pipeline.training.model_id}")
    for step in the_plan.steps:
        if step.kind not in ("dataset", "model"):
            continue
        row = recorded.find(step.key, step.fingerprint)
        current = recorded.current(step.key)
        for found in (row, current):
            if found is not None and found.remote_id:
                used.add(f"{step.kind}:{found.remote_id}")
    return used


def leftovers(the_plan: Plan, recorded: Recorded) -> list[Leftover]:
    """What `clean` would delete, oldest first."""
    used, gone = in_use(the_plan, recorded), cleaned(recorded)
    failed = {str(r.remote_id) for r in recorded.steps.get("train", ())
              if r.status == StepStatus.FAILED or r.outputs.get("status") in ("Failed", "Stopped")}
    found: dict[str, Leftover] = {}
    for kind in ("model", "dataset"):
        for row in recorded.steps.get(kind, ()):
            ref = f"{kind}:{row.remote_id}"
            if not row.remote_id or not row.remote_id.isdigit() or ref in used or ref in gone:
                continue
            why = ("its training failed" if kind == "model" and row.remote_id in failed
                   else f"superseded: the pipeline uses another {kind} now")
            found.setdefault(ref, Leftover(kind, int(row.remote_id),
                                           row.outputs.get("name"), why))
    return list(found.values())


@dataclass(frozen=True)
class Cleaned:
    deleted: list[Leftover]
    refused: list[tuple[Leftover, str]]  # with why it was left


def delete(client: BriaClient, pipeline_name: str, items: list[Leftover],
           record: Callable[[str], None], tell: Callable[[str], None]) -> Cleaned:
    """Delete each leftover, checking first at Bria that it carries this pipeline's name and
    is not training; ``record`` is called with each ref deleted (or already gone)."""
    deleted: list[Leftover] = []
    refused: list[tuple[Leftover, str]] = []
    for item in items:
        why = _refusal(client, pipeline_name, item)
        if why is None:
            why = _delete_one(client, item)
        if why is None or why == "already gone":
            record(item.ref)
            deleted.append(item)
            tell(f"deleted {item.describe()}" if why is None else
                 f"{item.kind} {item.remote_id}: already gone at Bria")
        else:
            refused.append((item, why))
            tell(f"kept {item.kind} {item.remote_id}: {why}")
    return Cleaned(deleted, refused)


def _refusal(client: BriaClient, pipeline_name: str, item: Leftover) -> str | None:
    try:
        found: dict[str, Any] = (client.get_model(item.remote_id) if item.kind == "model"
                                 else client.get_dataset(item.remote_id))
    except NotFound:
        return None  # deleting it answers 404 too: recorded as gone
    name = str(found.get("name") or "")
    if not name.startswith(f"{pipeline_name}-"):
        return f"its name at Bria ({name!r}) is not this pipeline's: not ours to delete"
    if item.kind == "model" and found.get("status") == "InProgress":
        return "its training is in progress (Bria refuses to delete it: 409); run clean later"
    return None


def _delete_one(client: BriaClient, item: Leftover) -> str | None:
    try:
        if item.kind == "model":
            client.delete_model(item.remote_id)
        else:
            client.delete_dataset(item.remote_id)
    except NotFound:
        return "already gone"
    except Conflict as exc:
        return f"Bria refused (409: {exc.bria_message or 'in use'}); run clean later"
    return None
