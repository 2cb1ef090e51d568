"""One request to Bria, done properly: headers, rate limit, retries, typed errors, stats.

This is the only place where httpx exceptions and HTTP statuses become bria-run errors
(``runner.errors``), and the only place the API token is put on the wire. The token is
sent per request (never as a default header), and only to the API root's own host, so
signed result links on another host never see it; it is never part of a message, a log
line or a repr. Every answer is read within the caps of ``runner.bria.bounds``, with the
token scrubbed from its bytes before anything decodes it.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from runner import __version__
from runner.bria.bounds import error_body, settle
from runner.bria.errors import ApiError, NetworkError, NotSent, api_error_class
from runner.bria.inline import has_inline, json_stream
from runner.bria.limiter import Budget
from runner.bria.retry import RetryPolicy, parse_retry_after
from runner.errors import Interrupted, redact

log = logging.getLogger("runner.bria.client")

USER_AGENT = f"bria-run/{__version__}"
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=10.0, pool=30.0)
# Bria's CDN cuts an answer at 60 s, and cold models can take that long to accept a job. A POST
# that creates (and charges) must outwait that cut: our own timeout firing first would lose an
# answer that was coming, and the engine would buy the job again. GETs keep their short timeout;
# one that times out is waited for longer next time (per endpoint), up to this same bound.
CREATE_READ_TIMEOUT = 90.0
# Failures before a connection existed: the request never left (``NotSent``).
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_MESSAGE_LIMIT = 500


@dataclass(frozen=True)
class Call:
    """What to send: ``key`` is the endpoint ("METHOD /path/{id}") for limits and stats."""

    method: str
    template: str
    path: str  # a path under the base URL, or an absolute URL (result links)
    body: dict[str, Any] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    is_api: bool = True  # False: a result link (no token, no rate limit)

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def shown_path(self) -> str:
        """The path for messages: no host, no query (signed links carry signatures there)."""
        return urlsplit(self.path).path or self.path


class _Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, dict[str, float]] = {}

    def add(self, key: str, **amounts: float) -> None:
        with self._lock:
            row = self._rows.setdefault(
                key, {"requests": 0, "retries": 0, "rate_limited": 0, "server_errors": 0,
                       "waited": 0.0}
            )
            for name, amount in amounts.items():
                row[name] += amount

    def snapshot(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {key: dict(row) for key, row in self._rows.items()}


class Outage:
    """How long one request has been failing: by the clock, or by the back-offs it slept when
    the clock does not move with them (tests that sleep no time)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock, self._began, self.waited = clock, clock(), 0.0

    def down_for(self) -> float:
        return max(self._clock() - self._began, self.waited)


class ApiSession:
    """Sends calls through the limiter and the retry policy; maps failures to ApiError."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        limiter: Budget,
        policy: RetryPolicy,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        timeout: httpx.Timeout | None = None,
        create_timeout: float = CREATE_READ_TIMEOUT,
        on_wait: Callable[[str, float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_outage: Callable[[str, float], None] | None = None,
        interrupt: threading.Event | None = None,
    ) -> None:
        self.base_url = base_url
        self._interrupt = interrupt  # set: back-offs end at once, raising Interrupted
        self._token = token
        self._limiter, self._policy = limiter, policy
        self._here = threading.local()  # seconds each thread has waited for slots
        self._sleep, self._rand, self._on_wait = sleep, rand, on_wait
        self._clock, self._on_outage = clock, on_outage
        self._stats = _Stats()
        self._timeout = timeout or DEFAULT_TIMEOUT
        self._create_timeout = max(create_timeout, self._timeout.read or 0.0)
        self._slow_reads: dict[str, float] = {}  # endpoint -> the longer read timeout it needed
        self._http = httpx.Client(
            base_url=base_url,
            transport=transport,
            timeout=self._timeout,
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"ApiSession(base_url={self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def stats(self) -> dict[str, dict[str, float]]:
        return self._stats.snapshot()

    def waited_here(self) -> float:
        """Seconds the calling thread has waited for rate-limit slots so far (the engine
        measures a step's own time without them)."""
        return float(getattr(self._here, "waited", 0.0))

    def send(
        self, call: Call, *, accept: Collection[int] = (), stream: bool = False
    ) -> httpx.Response:
        """Send ``call``, retrying when the policy allows; 2xx and ``accept`` statuses are
        returned, any other answer raises its ApiError. A streamed response must be closed
        by the caller."""
        retry, outage = 0, Outage(self._clock)
        while True:
            try:
                response = self._attempt(call, stream)
            except NetworkError as exc:
                self._lengthen_read(call, exc)
                if not self._policy.should_retry(call.method, None, retry, outage.down_for()):
                    raise
                self._pause(call.key, self._policy.backoff(retry, self._rand), outage, retry)
            else:
                if response.is_success or response.status_code in accept:
                    return response
                failure = self._error(call, response)
                is_held = self._hold_after_429(call, failure, retry)
                if not self._policy.should_retry(call.method, failure.status, retry,
                                                 outage.down_for()):
                    raise failure
                self._pause(call.key, 0.0 if is_held else self._delay(failure, retry), outage,
                            retry, is_rate_limit=failure.status == 429)
            retry += 1
            self._stats.add(call.key, retries=1)
            log.debug("retrying %s (retry %d)", call.key, retry)

    def _attempt(self, call: Call, stream: bool) -> httpx.Response:
        """One request on the wire, holding a rate-limit slot until its answer arrived."""
        request = self._build(call)
        if call.is_api:
            waited = self._limiter.acquire(call.key, self._on_wait)
            self._here.waited = self.waited_here() + waited
            self._stats.add(call.key, waited=waited)
        self._stats.add(call.key, requests=1)
        try:
            response = self._receive(call, request, stream)
        except httpx.TransportError as exc:
            detail = redact(describe_failure(exc), self._token)
            kind = NotSent if isinstance(exc, NOT_SENT) else NetworkError
            raise kind(None, call.method, call.shown_path, detail) from exc
        finally:
            if call.is_api:
                self._limiter.release(call.key)
        log.debug("%s %s -> %d", call.method, call.shown_path, response.status_code)
        if response.status_code == 429:
            self._stats.add(call.key, rate_limited=1)
        elif response.status_code >= 500:
            self._stats.add(call.key, server_errors=1)  # the engine's flow control backs off
        return response

    def _build(self, call: Call) -> httpx.Request:
        headers = dict(call.headers)
        if call.is_api and self._is_api_host(call.path):
            headers["api_token"] = self._token
        content: bytes | Iterator[bytes] | None = None
        if call.body is not None:
            headers["Content-Type"] = "application/json"
            body = drop_none(call.body)
            if has_inline(body):
                # Streamed with its exact length: memory stays flat whatever the image size.
                length, content = json_stream(body)
                headers["Content-Length"] = str(length)
            else:
                content = json.dumps(body).encode()
        return self._http.build_request(call.method, call.path, headers=headers, content=content,
                                        timeout=self._timeout_of(call))

    def _timeout_of(self, call: Call) -> httpx.Timeout:
        read = self._create_timeout if call.method == "POST" else self._slow_reads.get(call.key)
        if read is None:
            return self._timeout
        return httpx.Timeout(connect=self._timeout.connect, read=read, write=self._timeout.write,
                             pool=self._timeout.pool)

    def _lengthen_read(self, call: Call, exc: NetworkError) -> None:
        """A read that timed out is given twice as long on that endpoint from now on (up to the
        creating POSTs' bound): a slow status check is waited for, not given up on."""
        if call.method == "POST" or not isinstance(exc.__cause__, httpx.ReadTimeout):
            return
        current = self._slow_reads.get(call.key, self._timeout.read or self._create_timeout)
        self._slow_reads[call.key] = min(self._create_timeout, 2.0 * current)

    def _delay(self, failure: ApiError, retry: int) -> float:
        if failure.retry_after is not None:
            return failure.retry_after
        return self._policy.backoff(retry, self._rand)

    def _hold_after_429(self, call: Call, failure: ApiError, retry: int) -> bool:
        """After a 429 the limiter holds every caller of the endpoint (this one included,
        if it retries) until Retry-After or a back-off has passed: True when it does."""
        if failure.status != 429 or not call.is_api:
            return False
        self._limiter.block(call.key, self._delay(failure, retry))
        return True

    def should_retry(self, method: str, status: int | None, retry: int,
                     down_for: float = 0.0) -> bool:
        return self._policy.should_retry(method, status, retry, down_for)

    def backoff(self, retry: int) -> float:
        return self._policy.backoff(retry, self._rand)

    def outage(self) -> Outage:
        """A new tracker of how long something the caller retries itself has been failing."""
        return Outage(self._clock)

    def is_patient(self, retry: int) -> bool:
        """Past the quick retries (what is retried only quickly stops here)."""
        return self._policy.is_patient(retry)

    def back_off(self, key: str, retry: int, outage: Outage | None = None) -> None:
        """Sleep before retry number ``retry`` of a failure the caller saw itself (with its
        ``outage``: telling ``on_outage`` past the quick retries, as ``send`` does)."""
        self._stats.add(key, retries=1)
        self._pause(key, self._policy.backoff(retry, self._rand), outage, retry)

    def _pause(self, key: str, seconds: float, outage: Outage | None = None,
               retry: int = 0, *, is_rate_limit: bool = False) -> None:
        """Sleep a back-off (Ctrl-C ends it). Only a 429's wait is told as a rate-limit wait;
        a back-off after a failure is told by ``on_outage`` once past the quick retries."""
        if outage is not None and self._policy.is_patient(retry) and self._on_outage:
            self._on_outage(key, outage.down_for())  # past the quick retries: say so
        if seconds <= 0:
            if self._interrupt is not None and self._interrupt.is_set():
                raise Interrupted()  # a back-off drawn as zero still ends on Ctrl-C
            return
        if is_rate_limit and self._on_wait is not None:
            self._on_wait(key, seconds)
        self._stats.add(key, waited=seconds)
        if outage is not None:
            outage.waited += seconds
        if self._interrupt is None:
            self._sleep(seconds)
        elif self._interrupt.wait(seconds):
            # Ctrl-C while waiting out an outage: stop now (the step stays open, and the next
            # run picks it up), not up to 5 minutes later.
            raise Interrupted()

    def _error(self, call: Call, response: httpx.Response) -> ApiError:
        response = error_body(response, self._token)
        body = _body(response)
        retry_after = parse_retry_after(
            response.headers.get("Retry-After"), response.headers.get("Date")
        )
        message = redact(bria_message(body), self._token)
        response.close()
        cls = api_error_class(response.status_code)
        return cls(response.status_code, call.method, call.shown_path, message, body, retry_after)


    def _receive(self, call: Call, request: httpx.Request, stream: bool) -> httpx.Response:
        """The answer, streamed; unless the caller streams it, read here within the caps of
        ``runner.bria.bounds`` (a 2xx over 4 MB raises AnswerTooLarge), token scrubbed."""
        response = self._http.send(request, stream=True)
        if stream:
            return response
        if response.is_success:
            return settle(response, call.method, call.shown_path, self._token)
        return error_body(response, self._token)

    def _is_api_host(self, path: str) -> bool:
        """The token goes only to the API root's own scheme, host and port."""
        target = urlsplit(path)
        if not target.netloc:
            return True  # a path under the API root
        root = urlsplit(self.base_url)
        return (target.scheme, target.netloc.lower()) == (root.scheme, root.netloc.lower())

    def api_host(self) -> str | None:
        return urlsplit(self.base_url).hostname


def drop_none(value: Any) -> Any:
    """Bria rejects explicit nulls on optional fields: leave them out, at every depth."""
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_none(v) for v in value]
    return value


def bria_message(body: Any) -> str:
    """Bria's own words from an error body, whichever of its shapes it used."""
    if isinstance(body, str):
        return body.strip()[:_MESSAGE_LIMIT]
    if not isinstance(body, dict):
        return "" if body is None else str(body)[:_MESSAGE_LIMIT]
    error = body.get("error")
    if isinstance(error, dict):  # v2 envelope {"error": {"code", "message", "details"}}
        return str(error.get("message") or error.get("code") or "")[:_MESSAGE_LIMIT]
    if isinstance(body.get("errors"), list):  # 400 {"errors": [{msg, field_name, ...}]}
        return "; ".join(_field_error(e) for e in body["errors"])[:_MESSAGE_LIMIT]
    for key in ("message", "error", "detail"):
        if body.get(key):
            return str(body[key])[:_MESSAGE_LIMIT]
    return ""


def _field_error(entry: Any) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    msg, name = entry.get("msg") or entry.get("message") or "", entry.get("field_name")
    return f"{name}: {msg}" if name else str(msg)


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def describe_failure(exc: httpx.TransportError) -> str:
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "network error"
    detail = str(exc)
    return f"{kind} ({type(exc).__name__}{': ' + detail if detail else ''})"
