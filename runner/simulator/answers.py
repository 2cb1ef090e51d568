"""Bria's error answers, as the simulator sends them.

Bria's tailored-gen (v1) endpoints answer ``{"message"}`` or, for field validation,
``{"errors": [{"msg", "field_name", "field_input"}]}``; 403s are plain strings; the v2
endpoints wrap every error in ``{"error": {"code", "message", "details"}, "request_id"}``.
World operations raise ``SimError`` and the server writes its body as it is.
"""

from __future__ import annotations

import uuid
from typing import Any


class SimError(Exception):
    """An error answer: HTTP status plus the body Bria would send."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.status, self.body, self.headers = status, body, headers or {}


def message(status: int, text: str) -> SimError:
    return SimError(status, {"message": text})


def field_error(field: str, text: str, given: Any = None) -> SimError:
    """A 400 naming one field, in the ``errors`` list form Bria uses for validation."""
    return SimError(400, {"errors": [{"msg": text, "field_name": field, "field_input": given}]})


def forbidden(text: str) -> SimError:
    """403s come as a bare JSON string (quota, access, model not in the organisation)."""
    return SimError(403, text)


def v2_error(status: int, text: str, details: str = "") -> SimError:
    body = {
        "error": {"code": status, "message": text, "details": details},
        "request_id": uuid.uuid4().hex,
    }
    return SimError(status, body)


def as_v2(error: SimError) -> SimError:
    """The same error in the v2 envelope (v2 endpoints share v1 validation helpers)."""
    if isinstance(error.body, dict) and "error" in error.body:
        return error
    if isinstance(error.body, dict) and "errors" in error.body:
        first = error.body["errors"][0]
        return v2_error(error.status, first["msg"], f"field: {first['field_name']}")
    text = error.body.get("message", "") if isinstance(error.body, dict) else str(error.body)
    return v2_error(error.status, text)


def required(body: dict[str, Any], field: str) -> Any:
    value = body.get(field)
    if value is None or value == "":
        raise field_error(field, f"{field} is required", value)
    return value


def one_of(body: dict[str, Any], field: str, allowed: tuple[str, ...], default: Any = None) -> Any:
    value = body.get(field, default)
    if value is not None and value not in allowed:
        raise field_error(field, f"{field} must be one of: {', '.join(allowed)}", value)
    return value


def number_in(body: dict[str, Any], field: str, low: float, high: float | None) -> Any:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise field_error(field, f"{field} must be a number", value)
    if value < low or (high is not None and value > high):
        bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise field_error(field, f"{field} must be {bounds}", value)
    return value


def integer_id(body: dict[str, Any], field: str) -> int:
    value = required(body, field)
    if isinstance(value, bool) or not isinstance(value, int):
        raise field_error(field, f"{field} must be an integer", value)
    return value
