"""The organisation's budget in PostgreSQL (runner.state.budget), as two runners see it: one
slot log for both, 429 blocks for everyone, no token anywhere, and in memory per process when
the state is not PostgreSQL."""

from __future__ import annotations

import time
from typing import cast

import psycopg

from runner.bria.limiter import RateLimiter
from runner.budgets import Budgets, token_hash
from runner.state.budget import SharedBudget

ROOT, TOKEN = "https://engine.prod.bria-api.com", "secret-token-123"
KEY = "POST /v2/image/generate/tailored"


def two_runners(pg_url: str, rpm: int = 2, window: float = 30.0) -> list[SharedBudget]:
    budgets = [Budgets(pg_url, rpm, window) for _ in range(2)]  # two processes' worth
    return [cast(SharedBudget, b.for_api(ROOT, TOKEN)) for b in budgets]


def test_two_runners_draw_on_one_slot_log(pg_url: str) -> None:
    first, second = two_runners(pg_url)
    assert first is not second
    assert first._take(KEY) == 0.0 and second._take(KEY) == 0.0  # the 2 slots of the window
    assert first._take(KEY) is None  # both in flight: only an answer can free one
    assert second.usage(KEY) == 1.0
    first.release(KEY)
    wait = second._take(KEY)
    assert wait is not None and 29 < wait <= 30  # answered: the slot frees a window later
    assert second._take("GET /v2/status/{id}") == 0.0  # another endpoint, its own slots


def test_a_429_blocks_the_endpoint_for_every_runner(pg_url: str) -> None:
    first, second = two_runners(pg_url, rpm=100)
    first.block(KEY, 5.0)
    wait = second._take(KEY)
    assert wait is not None and 4 < wait <= 5
    assert second._take("GET /v2/status/{id}") == 0.0
    first.block(KEY, 1.0)  # a shorter Retry-After never shortens a block
    assert (second._take(KEY) or 0) > 4


def test_the_budget_is_keyed_by_a_hash_never_the_token(pg_url: str) -> None:
    first, _ = two_runners(pg_url)
    first.acquire(KEY)
    first.release(KEY)
    with psycopg.connect(pg_url) as conn:
        keys = {r[0] for r in conn.execute("SELECT budget FROM bria_run.budget_slots")}
    assert keys == {f"{ROOT}#{token_hash(TOKEN)}"}
    assert TOKEN not in str(keys)
    other = cast(SharedBudget, Budgets(pg_url, 2, 30.0).for_api(ROOT, "another-organisation"))
    assert other._take(KEY) == 0.0  # another token: another budget


def test_without_postgresql_the_pipelines_of_a_process_share_one_limiter() -> None:
    budgets = Budgets("state/luna.sqlite", 60)
    shared = budgets.for_api(ROOT, TOKEN)
    assert isinstance(shared, RateLimiter)
    assert budgets.for_api(ROOT, TOKEN) is shared
    assert budgets.for_api(ROOT, "another-organisation") is not shared


def test_expired_rows_of_endpoints_nobody_calls_are_swept(pg_url: str) -> None:
    budget = cast(SharedBudget, Budgets(pg_url, 1000, 0.01).for_api(ROOT, TOKEN))
    for n in range(3):
        budget.acquire(f"GET /v1/thing{n}")
        budget.release(f"GET /v1/thing{n}")
    budget.block("GET /v1/thing0", 0.0)
    time.sleep(0.05)  # past the 0.01 s window of the last answer
    with budget.engine.begin() as conn:
        budget._sweep(conn)
    with psycopg.connect(pg_url) as conn:
        left = conn.execute("SELECT (SELECT count(*) FROM bria_run.budget_slots), "
                            "(SELECT count(*) FROM bria_run.budget_blocks)").fetchone()
    assert left == (0, 0)
