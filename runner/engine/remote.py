"""Exactly-once POSTs where the API allows proof, at most one duplicate where it cannot.

``ensure_remote`` is the one place a POST is sent. Its protocol:

1. If an earlier intent for this step and operation landed, return its remote id.
2. If an earlier intent has an unknown outcome (the process died, or the answer was lost),
   ask ``reconcile`` (the list endpoints) whether it landed; adopt what exists.
3. Otherwise commit a new intent, send, and commit the remote id before anything else.

A POST is never retried blindly. What a failure proves:

- **Nothing was made:** a definite 4xx; a 429; Bria's own 500 or 503 (it answered, and said it
  did not do it); a connection that was never made (``NotSent``: refused, unreachable, a
  connect timeout; the request never left). Sent again after a back-off, as often as the
  outage tolerance allows, never counted.
- **The answer was lost:** the connection dropped after the request left (reset, cut answer,
  read timeout), a gateway's 502 or 504, or a 2xx too large to read. A gateway's status is
  an answer, but not Bria's: a 504 is the CDN giving up on an origin that goes on working (Bria's CDN cuts at 60 s, and
  the job is then made and charged), and a 502 may come from an origin that failed after doing
  the work (RFC 9110 9.2.2: a non-idempotent request is not retried unless the original is
  known never to have been applied). An unknown outcome: reconciled first when the API allows
  it. Only where no list endpoint exists (generation jobs, structured prompts) is it sent
  again without proof: at most once per step and operation per run, after a back-off; a
  second loss fails the step (``PaidJobMayExist``).

Failures are waited out for the run's outage tolerance, after the client's back-offs (tries at
most ``BACKOFF_CAP`` apart); then the last error is raised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runner.bria.errors import (
    AnswerTooLarge,
    ApiError,
    NetworkError,
    NotSent,
    PaidJobMayExist,
    RateLimited,
    ServerError,
)
from runner.engine.crashpoints import CrashPoints
from runner.errors import Interrupted
from runner.events import EventKind
from runner.state.rows import IntentOutcome, IntentRow, StepRow
from runner.state.store import Store

Answer = tuple[str, dict[str, Any]]  # remote id (or request id / url), data to keep
BACKOFF_CAP = 300.0  # seconds between two tries of a POST during an outage


GATEWAY_STATUSES = (502, 504)  # a proxy's answer: the origin may have done the work


def _doubling(retry: int) -> float:
    return min(BACKOFF_CAP, 2.0 * 2.0**retry)


@dataclass
class Remote:
    """What ``ensure_remote`` needs from its surroundings. ``resent`` is shared by a whole
    run: the (step id, op) pairs whose one unproven re-send is spent."""

    store: Store
    hooks: CrashPoints
    stop: threading.Event
    sleep: Callable[[float], None]
    clock: Callable[[], float] = time.monotonic
    tolerance: float = 1800.0
    resent: set[tuple[int, str]] = field(default_factory=set)
    on_outage: Callable[[str, float], None] | None = None
    backoff: Callable[[int], float] = _doubling  # seconds before retry n (the client's policy)


def is_lost(exc: ApiError) -> bool:
    """Bria's answer did not reach us, and the request may have done its work there."""
    if isinstance(exc, NetworkError):
        return not isinstance(exc, NotSent)
    if isinstance(exc, AnswerTooLarge):
        return True  # a 2xx too large to read: it was done, and its id is unknown
    return isinstance(exc, ServerError) and exc.status in GATEWAY_STATUSES


def ensure_remote(
    env: Remote,
    step: StepRow,
    op: str,
    send: Callable[[], Answer],
    reconcile: Callable[[], Answer | None] | None = None,
    *,
    is_paid: bool = True,
) -> Answer:
    """The remote id of ``op`` for ``step``: recorded, reconciled, or freshly created.
    ``is_paid=False``: a request that makes nothing to pay for twice (an identity text) is
    sent again after a lost answer without counting it."""
    known, is_first = _settle_previous(env, step, op, reconcile)
    if known is not None:
        return known
    outage = _Outage(env, op)
    while True:
        if reconcile is None and is_paid and not is_first:  # first: no send to count
            _spend_resend(env, step, op)
        is_first = False
        env.hooks.reach("before_intent", op)
        intent_id = env.store.record_intent(step.id, op)
        env.hooks.reach("after_intent", op)
        try:
            remote_id, data = send()
        except ApiError as exc:
            found = _after_failure(env, intent_id, exc, reconcile)
            if found is not None:
                return found
            if is_paid and reconcile is None and is_lost(exc) and (step.id, op) in env.resent:
                raise _twice_lost(step, op, exc) from exc
            outage.wait(exc)
            continue
        env.hooks.reach("after_send", op)
        env.store.resolve_intent(intent_id, IntentOutcome.LANDED, remote_id=remote_id, data=data)
        env.hooks.reach("after_record", op)
        return remote_id, data


def _after_failure(
    env: Remote, intent_id: int, exc: ApiError, reconcile: Callable[[], Answer | None] | None
) -> Answer | None:
    """Record what a failed send proves; what the list endpoints found, if anything. Raises
    ``exc`` when it is a definite refusal."""
    if isinstance(exc, NotSent):
        env.store.resolve_intent(intent_id, IntentOutcome.REJECTED)  # it never left
    elif reconcile is not None and isinstance(exc, (ServerError, NetworkError)):
        found = reconcile()
        if found is not None:
            env.store.resolve_intent(intent_id, IntentOutcome.RECONCILED, remote_id=found[0],
                                     data=found[1])
            return found
        env.store.resolve_intent(intent_id, IntentOutcome.ABSENT)
    elif is_lost(exc):
        env.store.resolve_intent(intent_id, IntentOutcome.UNANSWERED)
    else:
        env.store.resolve_intent(intent_id, IntentOutcome.REJECTED)
        if not isinstance(exc, (RateLimited, ServerError)):
            raise exc
    return None


def _spend_resend(env: Remote, step: StepRow, op: str) -> None:
    """Before a send without proof: if the last one's answer was lost, this is the run's one
    re-send of it; a second is refused."""
    previous = _intents(env, step, op)
    if not previous or previous[-1].outcome is not IntentOutcome.UNANSWERED:
        return
    if (step.id, op) in env.resent:
        raise _twice_lost(step, op)
    env.resent.add((step.id, op))


def _twice_lost(step: StepRow, op: str, exc: ApiError | None = None) -> PaidJobMayExist:
    if exc is None:
        why = "lost again after this run's one re-send"
    elif exc.status is not None:
        why = f"last: HTTP {exc.status} from a gateway"
    else:
        why = f"last: {exc.bria_message or 'no answer'}"
    return PaidJobMayExist(step.key, op, why)


class _Outage:
    """Waits between tries of one POST; gives up (raising the last error) once failures have
    lasted the tolerance, by the clock or by the back-offs slept (a clock that stands still)."""

    def __init__(self, env: Remote, op: str) -> None:
        self.env, self.op = env, op
        self.began, self.waited, self.tries = env.clock(), 0.0, 0

    def wait(self, exc: ApiError) -> None:
        env = self.env
        down_for = max(env.clock() - self.began, self.waited)
        if env.stop.is_set():
            raise Interrupted() from exc  # nothing more is sent; the next run continues
        if down_for >= env.tolerance:
            raise exc
        if isinstance(exc, RateLimited):
            # No attempt: the client's limiter now holds this endpoint until Retry-After (or a
            # back-off) has passed, and the next send waits that long with every other caller.
            self.waited += exc.retry_after or 0.0
            return
        if self.tries >= 2 and env.on_outage is not None:
            env.on_outage(self.op, down_for)
        seconds = min(BACKOFF_CAP, env.backoff(self.tries))
        self.tries += 1
        self.waited += seconds
        env.sleep(seconds)  # a Ctrl-C cuts it short
        if env.stop.is_set():
            raise Interrupted() from exc


def supersede(env: Remote, step: StepRow, op: str) -> None:
    """Forget the landed ``op`` of ``step`` (its job was lost or its link expired), so the
    next ``ensure_remote`` sends it again."""
    for intent in _intents(env, step, op):
        if intent.outcome in (IntentOutcome.LANDED, IntentOutcome.RECONCILED):
            env.store.resolve_intent(intent.id, IntentOutcome.SUPERSEDED)


def _settle_previous(
    env: Remote, step: StepRow, op: str, reconcile: Callable[[], Answer | None] | None
) -> tuple[Answer | None, bool]:
    """What earlier intents of ``op`` settle: their answer, if one landed; and whether there
    were none at all (then nothing was ever sent, and the state need not be read again)."""
    previous = _intents(env, step, op)
    if not previous:
        return None, True
    last = previous[-1]
    if last.outcome in (IntentOutcome.LANDED, IntentOutcome.RECONCILED) and last.remote_id is not None:
        return (last.remote_id, last.data), False
    if last.outcome is None:
        found = reconcile() if reconcile else None
        if found is not None:
            env.store.resolve_intent(last.id, IntentOutcome.RECONCILED, remote_id=found[0], data=found[1])
            env.store.log(EventKind.RECONCILED, step.key, op=op, remote_id=found[0])
            return found, False
        env.store.resolve_intent(last.id, IntentOutcome.UNANSWERED if reconcile is None else IntentOutcome.ABSENT)
        env.store.log(EventKind.RESENDING, step.key, op=op, proven=reconcile is not None)
    return None, False


def _intents(env: Remote, step: StepRow, op: str) -> list[IntentRow]:
    return [i for i in env.store.intents_of(step.id) if i.op == op]
