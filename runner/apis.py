"""Which API a command talks to: Bria, or a simulator started for the command, with the
identity its state records and a client made only when the first request needs one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from runner.bria.env import base_url_from_env, token_from_env, tuning_from_env
from runner.budgets import RATE_WINDOW_ENV, Budgets
from runner.engine.context import unaffected
from runner.events import EventKind, Reporter
from runner.pipeline.places import default_state_folder
from runner.pipeline.spec import Pipeline
from runner.state.rows import ApiIdentity

if TYPE_CHECKING:
    from runner.bria.client import BriaClient

# The demo simulator trains in seconds; real training takes hours.
SIM_TRAINING_SECONDS = 8.0
SIM_GENERATION_SECONDS = 1.0


def world_path(location: str, pipeline: Pipeline) -> Path:
    if "://" in location:
        return default_state_folder(pipeline.path) / "simulator-world.json"
    return Path(location).with_suffix(".world.json")


class Api:
    """The API a run talks to: its identity (known at once, so the state can be checked and
    the plan made without loading the HTTP stack) and a client made on first use."""

    def __init__(self, identity: ApiIdentity, make_client: Callable[[], BriaClient]) -> None:
        self.identity = identity
        self._make_client = make_client
        self._client: BriaClient | None = None

    @property
    def client(self) -> BriaClient:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


@contextmanager
def open_api(
    world: Path, simulate: bool, budgets: Budgets, reporter: Reporter | None = None,
    *, outage_tolerance: float = 0.0, interrupt: threading.Event | None = None,
) -> Iterator[Api]:
    """The API of a run; with ``simulate``, a simulator whose world persists in ``world``.
    Its client draws on ``budgets``' budget for that API; idempotent requests are retried
    through outages of up to ``outage_tolerance`` seconds."""
    def on_wait(endpoint: str, seconds: float) -> None:
        if reporter is not None and seconds >= 0.5:
            reporter.emit(EventKind.WAIT, endpoint=endpoint, seconds=seconds)

    def on_outage(endpoint: str, seconds: float) -> None:
        if reporter is not None:
            reporter.emit(EventKind.OUTAGE, endpoint=endpoint, seconds=seconds,
                          running=unaffected(endpoint))

    def client(base_url: str, token: str) -> Callable[[], BriaClient]:
        def make() -> BriaClient:
            from runner.bria.client import BriaClient
            from runner.bria.env import api_root

            return BriaClient(base_url, token, on_wait=on_wait, on_outage=on_outage,
                              budget=budgets.for_api(api_root(base_url), token),
                              outage_tolerance=outage_tolerance, interrupt=interrupt,
                              **tuning_from_env())
        return make

    if not simulate:
        base_url, token = base_url_from_env(), token_from_env()
        api = Api(ApiIdentity("real", base_url), client(base_url, token))
        try:
            yield api
        finally:
            api.close()
        return
    from runner.simulator import SimConfig, Simulator

    config = SimConfig(training_seconds=SIM_TRAINING_SECONDS,
                       generation_seconds=SIM_GENERATION_SECONDS,
                       persist_path=world)
    with Simulator(config) as sim:
        api = Api(ApiIdentity("simulated", sim.world_id), client(sim.base_url, config.token))
        try:
            yield api
        finally:
            api.close()


def rate_window() -> float:
    try:
        return max(0.01, float(os.environ.get(RATE_WINDOW_ENV, "60")))
    except ValueError:
        return 60.0
