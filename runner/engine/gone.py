"""Recorded remote ids that Bria no longer knows: found, named, and remembered for --retrain.

A 404 (or a generation refused for its model) may mean the resource a step relies on is gone
(deleted, or the account's world was reset). Then every later step fails the same way, so the
run stops with ``ResourceGone`` naming the first missing one, and the state remembers it
(meta ``gone``): the planner, pure, reads that as data and, with ``--retrain``, plans a new one
of that kind and everything after it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from runner.bria.errors import ApiError, NotFound
from runner.engine.context import Context
from runner.engine.planned import PlannedStep
from runner.errors import BriaRunError, DatasetIncomplete, ResourceGone

GONE_META = "gone"  # the kind of the first missing resource; cleared when its rebuild begins
ORDER = ("project", "dataset", "model")  # each lives inside the one before it


def find_gone(ctx: Context) -> ResourceGone | None:
    """The first recorded resource Bria answers 404 for, if any (one GET each, in order)."""
    getters: dict[str, Callable[[int], Any]] = {
        "project": ctx.client.get_project, "dataset": ctx.client.get_dataset,
        "model": ctx.client.get_model,
    }
    for kind in ORDER:
        remote_id = ctx.ids.get(kind)
        if remote_id is None:
            continue
        try:
            getters[kind](remote_id)
        except NotFound:
            from_file = kind == "model" and ctx.pipeline.training.model_id == remote_id
            return ResourceGone(kind, remote_id, from_file=from_file)
        except Exception:  # noqa: BLE001 - cannot tell now (no answer): the error stands
            return None
    return None


def explain(ctx: Context, error: BriaRunError) -> BriaRunError:
    """``error`` as the user should see it: a refusal that a missing resource explains becomes
    ``ResourceGone``; either that or an incomplete dataset is remembered for ``--retrain``."""
    if isinstance(error, ApiError) and error.status in (403, 404):
        error = find_gone(ctx) or error
    kind = "dataset" if isinstance(error, DatasetIncomplete) else (  # a new one gets every image
        error.kind if isinstance(error, ResourceGone) and not error.from_file else None)
    if kind is not None:
        with contextlib.suppress(Exception):  # a state that cannot be written: still say it
            ctx.store.set_meta(GONE_META, kind)
    return error


def remember_rebuild(ctx: Context, step: PlannedStep) -> None:
    """A project or dataset step is about to run: keep its rebuild count (so later plans keep
    its fingerprint), and once the missing kind's rebuild begins, forget that it was gone."""
    rebuild = step.inputs.get("rebuild")
    if rebuild:
        ctx.store.set_meta(f"{step.kind}_rebuild", str(rebuild))
    forget_gone(ctx, step.kind)


def forget_gone(ctx: Context, kind: str) -> None:
    if ctx.store.meta_value(GONE_META) == kind:
        ctx.store.set_meta(GONE_META, "")
