"""A faithful fake of Bria's Tailored Generation API, served over HTTP on loopback.

    from runner.simulator import Simulator, SimConfig
    with Simulator(SimConfig(training_seconds=5)) as sim:
        ...  # point the client at sim.base_url with token sim.config.token

Modules: ``server`` (HTTP, routing, rate limits), ``faults`` (which request meets which
fault, and where it falls against the work), ``sockets``, ``routes`` (paths ->
operations), ``world`` and ``records`` (resources and their state machines, pure and
clock-driven), ``jobs`` (generation and result links), ``identity`` (visual schema,
caption prefix), ``images`` (upload checks), ``render`` (result images), ``persist``,
``schemas`` (every operation's request body, checked before the world sees it) and
``retired`` (the legacy routes as retired endpoints answer them).
"""

from __future__ import annotations

from runner.simulator.config import SimConfig
from runner.simulator.server import Simulator

__all__ = ["SimConfig", "Simulator"]
