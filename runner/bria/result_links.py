"""Bria's result links: signed URLs (often on another host) that serve the images.

They are a CDN, not the API: no ``api_token`` header (it must not leak to another host)
and no rate limit, but the same retry policy for 429/5xx and dropped connections.
Legacy ``sync: false`` links answer 404 until the image exists; an expired signature
answers 403 (or 410).

Every download is bounded (``ResultLimits``): a link to a link-local, multicast or
unspecified address is refused before anything is sent (``runner.bria.addresses``); the
body streams to the caller's file up to ``max_bytes`` (64 MB) within ``seconds`` (300 s a
transfer); and its first bytes must be a PNG, JPEG or WEBP header that Pillow reads,
with plausible dimensions. Anything else (an HTML page served as a result, say) is a failed
download, retried quickly a few times, then ``ResultInvalid`` with the reason. A transfer cut
midway is waited out within the outage tolerance, at most ``TRANSFERS`` transfers in all. The
caller writes to a temporary file and moves it into place only when ``download`` returns.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import httpx

from runner.bria.addresses import refusal
from runner.bria.errors import JobTimeout, NetworkError, ResultExpired, ResultInvalid, ResultRefused
from runner.bria.session import ApiSession, Call, describe_failure

RESULT_LINK = "<result link>"  # the stats key of result links
_EXPIRED = (403, 410)
_CHUNK = 1 << 16
_HEAD = 1 << 20  # enough for any image header, EXIF segments included
MAX_SIDE = 16_384  # Bria's results are 1-2 K px a side; anything past this is not one
# Transfers of one download at most (the first included), however long the tolerance: each may
# move up to ``max_bytes``, so a link that always breaks midway costs at most this many.
TRANSFERS = 12


@dataclass(frozen=True)
class ResultLimits:
    max_bytes: int = 64 * 1024 * 1024
    seconds: float = 300.0  # one transfer, from its first byte asked to its last


class _Broken(Exception):
    """A bound broken mid-download: the reason, and whether a retry may help."""

    def __init__(self, reason: str, *, is_final: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.is_final = reason, is_final


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
    _refuse_address(session, call)
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


def download(session: ApiSession, url: str, out: BinaryIO, *,
             limits: ResultLimits | None = None,
             clock: Callable[[], float] = time.monotonic) -> str:
    """Stream ``url`` into ``out`` within ``limits``; the sha256 hex of the bytes written.

    A transfer cut midway is an outage like any unanswered GET: tried again from the start
    (after rewinding ``out``) with the retry policy's back-off, for as long as the outage
    tolerance lasts and at most ``TRANSFERS`` times in all, each transfer within ``limits``.
    One that broke a bound or is not an image is a fault of the link: a few quick retries
    only. When ``out`` cannot be rewound, either fails at once.
    """
    limits = limits or ResultLimits()
    call = Call("GET", RESULT_LINK, url, is_api=False)
    _refuse_address(session, call)
    start = out.tell() if out.seekable() else None
    retry, outage = 0, session.outage()
    while True:
        response = session.send(call, accept=(404, *_EXPIRED), stream=True)
        try:
            if response.status_code in (404, *_EXPIRED):
                raise ResultExpired(call.shown_path)
            return _stream_into(response, out, limits, clock() + limits.seconds, clock)
        except httpx.TransportError as exc:
            cut = NetworkError(None, "GET", call.shown_path, describe_failure(exc))
            if start is None or retry + 1 >= TRANSFERS or not session.should_retry(
                    "GET", None, retry, outage.down_for()):
                _rewind(out, start)
                raise cut from exc
        except _Broken as exc:
            # Too large or not an image: a fault of this link, not an outage.
            if start is None or exc.is_final or session.is_patient(retry):
                _rewind(out, start)  # leave nothing of it for the caller to keep
                raise ResultInvalid(call.shown_path, exc.reason) from None
        finally:
            response.close()
        _rewind(out, start)
        session.back_off(call.key, retry, outage)
        retry += 1


def _rewind(out: BinaryIO, start: int | None) -> None:
    if start is not None:
        out.seek(start)
        out.truncate()


def _refuse_address(session: ApiSession, call: Call) -> None:
    refused = refusal(call.path, session.api_host())
    if refused is not None:
        raise ResultRefused(call.shown_path, *refused)


def _stream_into(response: httpx.Response, out: BinaryIO, limits: ResultLimits,
                 deadline: float, clock: Callable[[], float]) -> str:
    digest = hashlib.sha256()
    head, size = bytearray(), 0
    is_checked = False
    for chunk in response.iter_bytes(_CHUNK):
        size += len(chunk)
        if size > limits.max_bytes:
            raise _Broken(f"larger than {limits.max_bytes // (1024 * 1024)} MB, the most "
                          "bria-run downloads for one image")
        if clock() > deadline:
            raise _Broken(f"not finished after {limits.seconds:g} s", is_final=True)
        if not is_checked:
            head += chunk[: _HEAD - len(head)]
            if len(head) >= _HEAD:
                check_image_head(bytes(head))
                is_checked = True
        digest.update(chunk)
        out.write(chunk)
    if not is_checked:
        check_image_head(bytes(head))
    return digest.hexdigest()


def check_image_head(head: bytes) -> tuple[str, int, int]:
    """The format and size of an image from its first bytes; ``_Broken`` unless it is a PNG,
    JPEG or WEBP header Pillow reads, with plausible dimensions (pixels are not decoded)."""
    from PIL import Image  # only downloads need it here; imported on the first one

    try:
        with Image.open(io.BytesIO(head)) as image:
            kind, (width, height) = image.format or "?", image.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        shown = head[:40].decode("ascii", "replace").replace("\n", " ").strip()
        raise _Broken(f"not a PNG, JPEG or WEBP image (it begins `{shown}`)") from exc
    if kind not in ("PNG", "JPEG", "WEBP"):
        raise _Broken(f"a {kind} image, not a PNG, JPEG or WEBP")
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise _Broken(f"a {kind} of {width}x{height} px, not a plausible result")
    return kind, width, height
