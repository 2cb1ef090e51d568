"""Which request budget a client draws on, decided once per command and shared by every
pipeline the command runs: with a PostgreSQL state, the organisation's budget in the database
(``runner.state.budget``: every runner on every machine shares it); otherwise one in-memory
limiter per API (``runner.bria.limiter``), shared by the pipelines of this process.

A budget is keyed by the API root and a hash of the token; the token itself goes nowhere.
"""

from __future__ import annotations

import hashlib
import threading

from sqlalchemy import Engine

from runner.bria.limiter import Budget, RateLimiter
from runner.state import postgres
from runner.state.budget import SharedBudget, budget_key

RATE_WINDOW_ENV = "BRIA_RUN_RATE_WINDOW"  # seconds in Bria's minute (tests compress it)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class Budgets:
    """The budgets of one command. ``state``: the state's URL or path (a PostgreSQL URL
    makes the budgets shared); ``rpm`` per ``window`` seconds per endpoint."""

    def __init__(self, state: str | None, rpm: int | None, window: float = 60.0) -> None:
        self.rpm, self.window = rpm, window
        self._url = state if state and postgres.is_postgres(state) else None
        self._engine: Engine | None = None
        self._made: dict[str, Budget] = {}
        self._lock = threading.Lock()

    @property
    def is_shared(self) -> bool:
        return self._url is not None

    def for_api(self, api_root: str, token: str) -> Budget:
        key = budget_key(api_root, token_hash(token))
        with self._lock:
            if key not in self._made:
                self._made[key] = self._make(key)
            return self._made[key]

    def _make(self, key: str) -> Budget:
        if self._url is None:
            return RateLimiter(self.rpm, self.window)
        if self._engine is None:
            self._engine = postgres.studio_engine(self._url)
        return SharedBudget(self._engine, key, self.rpm, self.window)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
