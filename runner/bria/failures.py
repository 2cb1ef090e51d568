"""Why a training failed, as far as Bria's model answer says (no httpx here: the engine
imports this while `plan` and `status` keep the HTTP stack unloaded)."""

from __future__ import annotations

from typing import Any

# Bria publishes no failure field for models; the user's guide reads ``error_message``.
# Every field whose name says it explains something is shown, whatever its shape.
_EXPLAINING = ("error", "reason", "message", "detail")


def failure_reasons(model: dict[str, Any]) -> dict[str, str]:
    """What a model's answer says about why it failed: ``{field: text}``, in answer order."""
    found: dict[str, str] = {}
    for key, value in model.items():
        if not any(word in key.lower() for word in _EXPLAINING):
            continue
        text = _as_text(value)
        if text:
            found[key] = text
    return found


def _as_text(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return ""
    if isinstance(value, dict):
        parts = [f"{k} {_as_text(v)}" if k not in ("message", "msg") else _as_text(v)
                 for k, v in value.items() if _as_text(v)]
        return ", ".join(parts)
    if isinstance(value, list):
        return "; ".join(t for t in (_as_text(v) for v in value) if t)
    return " ".join(str(value).split())[:300]
