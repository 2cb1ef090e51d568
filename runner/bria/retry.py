"""When and how long to wait before sending a request again, as Bria's own SDK does it.

Only idempotent methods (GET, PUT, DELETE) are retried, and only on answers that say
"not now" (429, 500, 502, 503, 504) or on no answer at all (timeouts, network errors): a few
times at once, then, with a ``patience`` (the run's outage tolerance), until the outage has
lasted that long, at most 5 minutes apart. A 500 is waited out like the others: in a storm it
is as passing as a 503, and sending an idempotent request again costs nothing; a 500 that
lasts (one broken resource) ends the request after the tolerance, with Bria's message.

A POST is never retried here: Bria has no idempotency keys, so a POST sent twice creates (and
charges) twice; the engine reconciles through the list endpoints first.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass

IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "DELETE", "HEAD"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Full-jitter exponential backoff: retry n waits uniformly in [0, min(cap, base * 2**n)).

    With the defaults the three retries wait about 0-4 s, 0-8 s and 0-16 s; past them, only
    while the outage is shorter than ``patience`` seconds, with tries at most ``cap`` apart.
    """

    max_retries: int = 3
    base: float = 4.0
    cap: float = 300.0
    patience: float = 0.0

    def backoff(self, retry: int, rand: Callable[[], float]) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        return float(rand()) * min(self.cap, self.base * (2.0 ** min(retry, 32)))  # no overflow

    def should_retry(
        self, method: str, status: int | None, retry: int, down_for: float = 0.0
    ) -> bool:
        """Whether a request that got ``status`` (None: no answer) may be sent again, after
        ``retry`` retries and ``down_for`` seconds since its first failure."""
        if method.upper() not in IDEMPOTENT_METHODS:
            return False
        if retry >= self.max_retries and down_for >= self.patience:
            return False
        return status is None or status in RETRY_STATUSES

    def is_patient(self, retry: int) -> bool:
        """Past the quick retries: the caller is waiting out an outage."""
        return retry >= self.max_retries


def parse_retry_after(
    value: str | None, date_header: str | None = None, *, now: Callable[[], float] = time.time
) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP-date.

    An HTTP-date is measured against the answer's own ``Date`` header when there is one
    (so a skewed local clock does not matter), else against ``now()``. None when the
    header is absent or unreadable; never negative.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    when = _http_date(text)
    if when is None:
        return None
    reference = _http_date(date_header) if date_header else None
    return max(0.0, when - (reference if reference is not None else now()))


def _http_date(text: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
