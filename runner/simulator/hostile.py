"""Test-only faults that attack the client's bounds: answers no real Bria sends.

Turned on through ``SimConfig`` (``huge_answer``, ``result_fault``, ``result_host``,
``echo_token``) by the
tests and benchmarks that prove bria-run's limits: a JSON answer of a gigabyte, a result
download that never ends, an HTML page served as a result, a result link that points at the
cloud metadata address, a job error that echoes the token. Every body is generated as it is written, so the simulator's own
memory stays flat whatever the size.
"""

from __future__ import annotations

import json
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from runner.simulator.config import SimConfig

_CHUNK = 1 << 16
STATUS_ROUTE = "GET /v2/status/{id}"
HTML = (b"<!doctype html><html><head><title>Sign in</title></head><body><h1>Please sign in"
        b"</h1><p>This page is not an image.</p></body></html>\n")


class Handler(Protocol):
    """The parts of ``BaseHTTPRequestHandler`` used here."""

    wfile: Any
    close_connection: bool

    def send_response(self, code: int, message: str | None = None) -> None: ...

    def send_header(self, keyword: str, value: str) -> None: ...

    def end_headers(self) -> None: ...


def serve_api(handler: Handler, config: SimConfig, key: str, answer: Any) -> bool:
    """Answer ``key`` the hostile way if a fault asks for it (True when it did)."""
    if config.result_host and isinstance(answer, dict):
        _rehost(answer, config.result_host)
    if config.echo_token and isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        answer["error"]["message"] = f"{answer['error'].get('message')} (api_token " \
                                     f"{config.token} has no access to this model)"
    if config.huge_answer and key == STATUS_ROUTE:
        head = json.dumps({"status": "IN_PROGRESS", "padding": ""}).encode()[:-2]
        tail = b'"}'
        _stream(handler, "application/json", head, config.huge_answer - len(head) - len(tail),
                tail)
        return True
    return False


def serve_result(handler: Handler, config: SimConfig, data: bytes) -> bool:
    """Serve a result link the hostile way if a fault asks for it (True when it did)."""
    if config.result_fault == "html":
        _headers(handler, 200, "text/html; charset=utf-8", len(HTML))
        handler.wfile.write(HTML)
        return True
    if config.result_fault == "endless":
        # A real image's first bytes, then zeros without end and without a length.
        _stream(handler, "image/png", data, None, b"")
        return True
    return False


def _rehost(answer: dict[str, Any], host: str) -> None:
    result = answer.get("result")
    if isinstance(result, dict) and isinstance(result.get("image_url"), str):
        parts = urlsplit(result["image_url"])
        result["image_url"] = urlunsplit(parts._replace(netloc=host))


def _headers(handler: Handler, status: int, content_type: str, length: int | None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    if length is None:
        handler.send_header("Connection", "close")
        handler.close_connection = True
    else:
        handler.send_header("Content-Length", str(length))
    handler.end_headers()


def _stream(handler: Handler, content_type: str, head: bytes, padding: int | None,
            tail: bytes) -> None:
    """``head``, then ``padding`` filler bytes (None: forever), then ``tail``, until the
    client hangs up."""
    total = None if padding is None else len(head) + padding + len(tail)
    _headers(handler, 200, content_type, total)
    filler = (b"x" if content_type == "application/json" else b"\0") * _CHUNK
    try:
        handler.wfile.write(head)
        left = padding
        while left is None or left > 0:
            piece = filler if left is None else filler[:min(_CHUNK, left)]
            handler.wfile.write(piece)
            if left is not None:
                left -= len(piece)
        handler.wfile.write(tail)
    except OSError:
        handler.close_connection = True  # the client stopped reading: what a bound does
