"""How much of an answer bria-run reads, and the token scrubbed from every byte of it.

Every API answer is streamed and read up to ``MAX_ANSWER_BYTES`` (4 MB: Bria's largest
documented answers, a dataset's image list or a visual schema, are a few KB); past it the
request fails with ``AnswerTooLarge`` after reading no more than the cap, so a 1 GB answer
costs 4 MB of memory, not 1 GB. Error bodies are read up to ``MAX_ERROR_BYTES`` and cut there
(only their message is used). Before anything is decoded, the API token is replaced in the
raw bytes: a text from Bria that echoes it (a job's error message, say) never reaches the
state, a message or the terminal.
"""

from __future__ import annotations

import httpx

from runner.bria.errors import AnswerTooLarge

MAX_ANSWER_BYTES = 4 * 1024 * 1024
MAX_ERROR_BYTES = 64 * 1024
REDACTED = b"***"


def read_capped(response: httpx.Response, cap: int) -> tuple[bytes, bool]:
    """At most ``cap`` bytes of the body, and whether there was more (then it was not read)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            return b"".join(chunks)[:cap], True
    return b"".join(chunks), False


def settle(response: httpx.Response, method: str, path: str, token: str,
           cap: int | None = None) -> httpx.Response:
    """The streamed ``response`` read whole (within the cap) into a plain one, token-free."""
    limit = MAX_ANSWER_BYTES if cap is None else cap
    try:
        data, is_cut = read_capped(response, limit)
    finally:
        response.close()
    if is_cut:
        raise AnswerTooLarge(response.status_code, method, path,
                             f"the answer is larger than {limit // (1024 * 1024)} MB, the most "
                             "bria-run reads")
    return _copy(response, scrub(data, token))


def error_body(response: httpx.Response, token: str) -> httpx.Response:
    """An error answer, read up to ``MAX_ERROR_BYTES`` (the rest is dropped), token-free."""
    if response.is_stream_consumed:
        data = response.content
    else:
        try:
            data, _ = read_capped(response, MAX_ERROR_BYTES)
        finally:
            response.close()
    return _copy(response, scrub(data, token))


def scrub(data: bytes, token: str) -> bytes:
    secret = token.encode()
    return data.replace(secret, REDACTED) if len(secret) >= 4 else data


def _copy(response: httpx.Response, data: bytes) -> httpx.Response:
    headers = [(k, v) for k, v in response.headers.multi_items()
               if k.lower() not in ("content-length", "content-encoding", "transfer-encoding")]
    return httpx.Response(response.status_code, headers=headers, content=data,
                          request=response.request, extensions=response.extensions)
