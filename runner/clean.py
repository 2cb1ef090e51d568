"""What `bria-run clean FILE` does, without click: list the pipeline's remote leftovers from
its state (sending nothing), then, once confirmed, delete them under the state's lock and
record each deletion (``runner.engine.cleanup`` decides what is a leftover)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from runner.apis import open_api, rate_window, world_path
from runner.app import Target, open_recorded, pipeline_key, state_location
from runner.budgets import Budgets
from runner.engine.cleanup import CLEANED, Cleaned, Leftover, cleaned, delete, leftovers
from runner.engine.plan import plan
from runner.pipeline.loader import load_pipeline
from runner.state.store import Store


@dataclass(frozen=True)
class Found:
    pipeline: str
    location: str
    items: list[Leftover]


def find_leftovers(target: Target) -> Found:
    """The leftovers the state knows of; touches no API."""
    with open_recorded(target) as (pipeline, store, recorded, location):
        items = leftovers(plan(pipeline, recorded, pipeline.image_hashes), recorded) \
            if store is not None else []
        return Found(pipeline.name, location, items)


def clean(target: Target, command: str, tell: Callable[[str], None], *, rpm: int | None = 60
          ) -> Cleaned:
    """Delete the leftovers, under the lock (a run may not start meanwhile); what the state
    says is read again there, so nothing a run just started using is deleted."""
    from runner.state.lock import RunLock

    pipeline, _ = load_pipeline(target.path)
    location = state_location(pipeline, target)
    budgets = Budgets(location, rpm, rate_window())
    try:
        with open_api(world_path(location, pipeline), target.simulate, budgets) as api, \
                Store.open(location, api.identity, create=False,
                           pipeline=pipeline_key(pipeline)) as store, \
                RunLock(store, command):
            recorded = store.load()
            items = leftovers(plan(pipeline, recorded, pipeline.image_hashes), recorded)
            done = set(cleaned(recorded))

            def record(ref: str) -> None:
                done.add(ref)
                store.set_meta(CLEANED, json.dumps(sorted(done)))

            return delete(api.client, pipeline.name, items, record, tell)
    finally:
        budgets.close()
