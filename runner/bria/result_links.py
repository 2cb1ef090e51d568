"""Bria's result links: signed URLs (often on another host) that serve the images.

They are a CDN, not the API: no ``api_token`` header (it must not leak to another host)
and no rate limit, but the same retry policy for 429/5xx and dropped connections.
Legacy ``sync: false`` links answer 404 until the image exists; an expired signature
answers 403 (or 410).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import BinaryIO

import httpx

from runner.bria.session import ApiSession, Call, describe_failure
from runner.errors import JobTimeout, NetworkError, ResultExpired

RESULT_LINK = "<result link>"  # the stats key of result links
_EXPIRED = (403, 410)
_CHUNK = 1 << 16


def wait_until_served(
    session: ApiSession,
    url: str,
    *,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    poll_every: float,
    timeout: float,
) -> None:
    """Ranged GET of byte 0 until the link serves content (200/206)."""
    deadline = clock() + timeout
    call = Call("GET", RESULT_LINK, url, headers=(("Range", "bytes=0-0"),), is_api=False)
    while True:
        response = session.send(call, accept=(404, *_EXPIRED))
        response.close()
        if response.status_code in _EXPIRED:
            raise ResultExpired(call.shown_path)
        if response.status_code != 404:
            return
        if clock() + poll_every > deadline:
            raise JobTimeout(call.shown_path, f"result not ready after {timeout:g} s")
        sleep(poll_every)


def download(session: ApiSession, url: str, out: BinaryIO) -> str:
    """Stream ``url`` into ``out``; the sha256 hex of the bytes written.

    A transfer dropped midway is retried (per the retry policy) from the start, after
    rewinding ``out``; when ``out`` cannot be rewound it raises NetworkError instead.
    """
    call = Call("GET", RESULT_LINK, url, is_api=False)
    start = out.tell() if out.seekable() else None
    retry = 0
    while True:
        response = session.send(call, accept=(404, *_EXPIRED), stream=True)
        try:
            if response.status_code in (404, *_EXPIRED):
                raise ResultExpired(call.shown_path)
            return _stream_into(response, out)
        except httpx.TransportError as exc:
            if start is None or not session.should_retry("GET", None, retry):
                raise NetworkError(None, "GET", call.shown_path, describe_failure(exc)) from exc
        finally:
            response.close()
        out.seek(start)
        out.truncate()
        session.back_off(call.key, retry)
        retry += 1


def _stream_into(response: httpx.Response, out: BinaryIO) -> str:
    digest = hashlib.sha256()
    for chunk in response.iter_bytes(_CHUNK):
        digest.update(chunk)
        out.write(chunk)
    return digest.hexdigest()
