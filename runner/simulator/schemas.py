"""The request body of every simulated operation, as a JSON Schema, and its check.

Written here from Bria's published field names, types, enums and required fields (the
2026-08 OpenAPI, read, not copied) and, for the legacy routes it no longer lists, from the
contract page. Every request the simulator serves is checked against its operation's
schema before the world sees it, so a client that sends a wrong type is refused here as
it would be by Bria's typed servers.

Open points, decided here:
- A wrong type, a value outside an enum or a bound, or a missing required field answers
  400 (the OpenAPI's "Bad request - validation error" / "Invalid parameters"; 422 is
  listed for moderation), in the route's own envelope: v2 ``{"error": {...},
  "request_id"}``, v1 ``{"errors": [{"msg", "field_name", "field_input"}]}``.
- Unknown fields are accepted and ignored, as Bria's servers ignore them, and counted
  (``/__sim/stats`` ``unknown_fields``), so a client that sends a name Bria does not read
  is seen instead of silently doing nothing.
- ``tailored_model_id`` is a string on the v2 routes (published), an integer on the
  legacy ``/v1/reimagine`` (v1 ids are integers); an integer on a v2 route is refused.
- A field the published OpenAPI does not list but the legacy flow needs (``caption_prefix``
  on a dataset, ``training_version`` on a model) is known, marked ``x-legacy``.
- ``null`` for an optional field counts as not given (the published schemas mark nothing
  nullable, but optional fields with defaults take it on typed servers); bria-run itself
  never sends ``null``.
- Required fields the OpenAPI leaves unmarked but its descriptions require
  (``project_name``, ``ip_type``, ``ip_medium``; ``name`` and ``dataset_id`` of a model)
  are required here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from runner.simulator.answers import SimError, field_error, v2_error

TG = "/v1/tailored-gen"
STRING: dict[str, Any] = {"type": "string"}
INTEGER: dict[str, Any] = {"type": "integer"}
NUMBER: dict[str, Any] = {"type": "number"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9")
IP_TYPES = ("multi_object_set", "object_variants", "icons", "defined_character",
            "character_variants", "stylized_scene", "other")
GUIDANCE_METHODS = ("controlnet_canny", "controlnet_depth", "controlnet_recoloring",
                    "controlnet_color_grid")
LR_SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
                 "constant_with_warmup")


def enum(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


def bounded(kind: str, low: float, high: float | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind, "minimum": low}
    if high is not None:
        schema["maximum"] = high
    return schema


def strings(low: int = 0, high: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": STRING, "minItems": low}
    if high is not None:
        schema["maxItems"] = high
    return schema


def legacy(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "x-legacy": True}


def body(*required: str, **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": properties}


def _guidance(n: int) -> dict[str, dict[str, Any]]:
    return {
        f"guidance_method_{n}": enum(*GUIDANCE_METHODS),
        f"guidance_method_{n}_image_file": STRING,
        f"guidance_method_{n}_image_url": STRING,
        f"guidance_method_{n}_scale": bounded("number", 0, 1),
    }


# Operation key ("METHOD template", as routes.py spells it) -> schema of its JSON body.
SCHEMAS: dict[str, dict[str, Any]] = {
    f"POST {TG}/projects": body(
        "project_name", "ip_type", "ip_medium",
        project_name=STRING, project_description=STRING, ip_name=STRING,
        ip_description=STRING, ip_medium=enum("photography", "illustration"),
        ip_type=enum(*IP_TYPES)),
    f"POST {TG}/datasets": body(
        "project_id", "name", project_id=INTEGER, name=STRING,
        upload_type=enum("basic", "advanced")),
    f"PUT {TG}/datasets/{{id}}": body(
        name=STRING, visual_schema=STRING, status=enum("draft", "completed"),
        caption_prefix=legacy(STRING)),
    f"POST {TG}/datasets/{{id}}/images": body(
        file=STRING, image_url=STRING, image_name=STRING, increase_resolution=BOOLEAN,
        content_moderation=BOOLEAN),
    f"PUT {TG}/datasets/{{dataset_id}}/images/{{image_id}}": body(
        caption=STRING, regenerate_caption=BOOLEAN),
    f"POST {TG}/generate_visual_schema": body(
        "images", images=strings(5, 10), content_moderation=BOOLEAN),
    f"POST {TG}/refine_structured_prompt": body(
        "dataset_id", "structured_prompt", "instruction", dataset_id=INTEGER,
        structured_prompt=STRING, instruction=STRING, context_images=strings()),
    f"POST {TG}/generate_prefix": legacy(body(
        "images", images=strings(1, 6), ip_type=enum(*IP_TYPES),
        ip_medium=enum("photography", "illustration"), ip_name=STRING)),
    f"POST {TG}/models": body(
        "name", "dataset_id", name=STRING, dataset_id=INTEGER,
        training_mode=enum("fully_automated", "expert"),
        training_version=legacy(enum("light", "max"))),
    f"POST {TG}/models/{{id}}/start_training": body(
        lr_scheduler=enum(*LR_SCHEDULERS), learning_rate=bounded("number", 0.000001, 0.001),
        total_training_steps=bounded("integer", 1, 5000), rank=bounded("integer", 4, 256),
        checkpoint_interval=bounded("integer", 100), lr_warmup_steps=bounded("integer", 0, 1000)),
    "POST /v2/image/generate/tailored": body(
        "tailored_model_id", tailored_model_id=STRING,
        tailored_model_influence=bounded("number", 0, 1.5), prompt=STRING,
        structured_prompt=STRING, negative_prompt=STRING,
        guidance_scale=bounded("integer", 3, 5), aspect_ratio=enum(*ASPECT_RATIOS),
        steps_num=bounded("integer", 20, 50), seed=INTEGER, sync=BOOLEAN,
        prompt_content_moderation=BOOLEAN, visual_output_content_moderation=BOOLEAN),
    "POST /v2/structured_prompt/generate": body(
        prompt=STRING, images=strings(0, 1), structured_prompt=STRING, seed=INTEGER,
        sync=BOOLEAN, webhook_url=STRING, ip_signal=BOOLEAN,
        prompt_content_moderation=BOOLEAN, visual_input_content_moderation=BOOLEAN),
    "POST /v1/text-to-image/tailored/{id}": legacy(body(
        "prompt", prompt=STRING, num_results=bounded("integer", 1, 4),
        aspect_ratio=enum(*ASPECT_RATIOS), seed=INTEGER, sync=BOOLEAN,
        model_influence=bounded("number", 0, 1), negative_prompt=STRING,
        **_guidance(1), **_guidance(2))),
    "POST /v1/reimagine": legacy(body(
        "prompt", "tailored_model_id", prompt=STRING, structure_image_file=STRING,
        structure_image_url=STRING, structure_ref_influence=bounded("number", 0, 1),
        tailored_model_id=INTEGER, tailored_model_influence=bounded("number", 0, 1.5),
        num_results=bounded("integer", 1, 4), seed=INTEGER, sync=BOOLEAN)),
}

_VALIDATORS = {key: Draft202012Validator(schema) for key, schema in SCHEMAS.items()}


@dataclass(frozen=True)
class Departure:
    """The first way a body departs from its operation's schema."""

    field: str  # "" when the body as a whole is wrong
    message: str
    given: Any


def departure(key: str, payload: dict[str, Any]) -> Departure | None:
    """The body's first schema violation, or None (also for operations without a body)."""
    validator = _VALIDATORS.get(key)
    if validator is None:
        return None
    given = {k: v for k, v in payload.items() if v is not None}
    error = next(iter(sorted(validator.iter_errors(given), key=lambda e: list(e.path))), None)
    if error is None:
        return None
    field = ".".join(str(part) for part in error.path)
    if error.validator == "required":
        missing = str(error.message).split("'")[1]
        return Departure(missing, f"{missing} is required", None)
    value = error.instance if not isinstance(error.instance, str) or len(error.instance) < 80 \
        else f"<{len(error.instance)} characters>"
    return Departure(field.split(".")[0] or field, f"{field or 'body'}: {_said(error)}", value)


def refusal(key: str, payload: dict[str, Any], *, is_v2: bool) -> SimError | None:
    """The 400 a typed Bria server answers to a body that departs from its schema, in the
    route's envelope; None for a body that conforms."""
    found = departure(key, payload)
    if found is None:
        return None
    if is_v2:
        return v2_error(400, found.message, f"field: {found.field}")
    return field_error(found.field, found.message, found.given)


def _said(error: Any) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "type":
        return f"must be of type {schema.get('type')}"
    if error.validator == "enum":
        return "must be one of: " + ", ".join(str(v) for v in schema.get("enum", []))
    return str(error.message)


def unknown_fields(key: str, payload: dict[str, Any]) -> list[str]:
    """Top-level fields the operation does not read (Bria ignores them)."""
    schema = SCHEMAS.get(key)
    if schema is None:
        return []
    return sorted(set(payload) - set(schema["properties"]))


def legacy_fields(key: str, payload: dict[str, Any]) -> list[str]:
    """Fields of ``payload`` (or the whole operation) that only the legacy flow uses."""
    schema = SCHEMAS.get(key)
    if schema is None:
        return []
    if schema.get("x-legacy"):
        return sorted(payload) or ["(route)"]
    properties = schema["properties"]
    return sorted(k for k in payload if properties.get(k, {}).get("x-legacy"))


def nested_counts(counts: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    shown: dict[str, dict[str, int]] = {}
    for (operation, name), times in sorted(counts.items()):
        shown.setdefault(operation, {})[name] = times
    return shown


def shortened(value: Any) -> Any:
    """A body to keep: long strings (base64 images) become a short string of the same type."""
    if isinstance(value, dict):
        return {k: shortened(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shortened(v) for v in value]
    if isinstance(value, str) and len(value) > 200:
        return f"<{len(value)} characters>"
    return value
