"""Exactly-once POSTs where the API allows proof, at most one duplicate where it cannot.

``ensure_remote`` is the one place a POST is sent. Its protocol:

1. If an earlier intent for this step and operation landed, return its remote id.
2. If an earlier intent has an unknown outcome (the process died, or the answer was lost),
   ask ``reconcile`` (the list endpoints) whether it landed; adopt what exists.
3. Otherwise commit a new intent, send, and commit the remote id before anything else.

A POST is never retried blindly: a 429 or a definite 4xx proves nothing landed; a 5xx or a
lost connection is an unknown outcome, reconciled first when the API allows it. Only where
no list endpoint exists (generation jobs) is it sent again without proof, and then at most
once per lost answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runner.engine.crashpoints import CrashPoints
from runner.errors import ApiError, NetworkError, RateLimited, ServerError
from runner.events import EventKind
from runner.state.rows import IntentOutcome, IntentRow, StepRow
from runner.state.store import Store

Answer = tuple[str, dict[str, Any]]  # remote id (or request id / url), data to keep
POST_ATTEMPTS = 5
UNKNOWN = (ServerError, NetworkError)


@dataclass
class Remote:
    """What ``ensure_remote`` needs from its surroundings."""

    store: Store
    hooks: CrashPoints
    stop: threading.Event
    sleep: Callable[[float], None]


def ensure_remote(
    env: Remote,
    step: StepRow,
    op: str,
    send: Callable[[], Answer],
    reconcile: Callable[[], Answer | None] | None = None,
) -> Answer:
    """The remote id of ``op`` for ``step``: recorded, reconciled, or freshly created."""
    known = _settle_previous(env, step, op, reconcile)
    if known is not None:
        return known
    attempt = 0  # answers that proved nothing; a 429 is no attempt, it is waited out
    while True:
        env.hooks.reach("before_intent", op)
        intent_id = env.store.record_intent(step.id, op)
        env.hooks.reach("after_intent", op)
        try:
            remote_id, data = send()
        except RateLimited:
            env.store.resolve_intent(intent_id, IntentOutcome.REJECTED)
            if env.stop.is_set():
                raise
            # The client's limiter now holds this endpoint until Retry-After (or a back-off)
            # has passed: the next send waits exactly that long, with every other caller.
            continue
        except UNKNOWN as exc:
            attempt += 1
            found = reconcile() if reconcile else None
            if found is not None:
                env.store.resolve_intent(intent_id, IntentOutcome.RECONCILED, remote_id=found[0], data=found[1])
                return found
            env.store.resolve_intent(intent_id, IntentOutcome.UNANSWERED if reconcile is None else IntentOutcome.ABSENT)
            if attempt == POST_ATTEMPTS:
                raise
            _pause(env, min(30.0, 2.0 ** attempt), exc)
            continue
        except ApiError:
            env.store.resolve_intent(intent_id, IntentOutcome.REJECTED)
            raise
        env.hooks.reach("after_send", op)
        env.store.resolve_intent(intent_id, IntentOutcome.LANDED, remote_id=remote_id, data=data)
        env.hooks.reach("after_record", op)
        return remote_id, data


def supersede(env: Remote, step: StepRow, op: str) -> None:
    """Forget the landed ``op`` of ``step`` (its job was lost or its link expired), so the
    next ``ensure_remote`` sends it again."""
    for intent in _intents(env, step, op):
        if intent.outcome in (IntentOutcome.LANDED, IntentOutcome.RECONCILED):
            env.store.resolve_intent(intent.id, IntentOutcome.SUPERSEDED)


def _settle_previous(
    env: Remote, step: StepRow, op: str, reconcile: Callable[[], Answer | None] | None
) -> Answer | None:
    previous = _intents(env, step, op)
    if not previous:
        return None
    last = previous[-1]
    if last.outcome in (IntentOutcome.LANDED, IntentOutcome.RECONCILED) and last.remote_id is not None:
        return last.remote_id, last.data
    if last.outcome is None:
        found = reconcile() if reconcile else None
        if found is not None:
            env.store.resolve_intent(last.id, IntentOutcome.RECONCILED, remote_id=found[0], data=found[1])
            env.store.log(EventKind.RECONCILED, step.key, op=op, remote_id=found[0])
            return found
        env.store.resolve_intent(last.id, IntentOutcome.UNANSWERED if reconcile is None else IntentOutcome.ABSENT)
        env.store.log(EventKind.RESENDING, step.key, op=op, proven=reconcile is not None)
    return None


def _intents(env: Remote, step: StepRow, op: str) -> list[IntentRow]:
    return [i for i in env.store.intents_of(step.id) if i.op == op]


def _pause(env: Remote, seconds: float, exc: ApiError) -> None:
    if env.stop.is_set():
        raise exc
    env.sleep(seconds)
