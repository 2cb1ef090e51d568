"""The identity endpoints: fibo's visual schema, the legacy caption prefix, and
structured-prompt refinement. Answers are derived from the images, so the same images
give the same identity."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from runner.simulator import images as pictures
from runner.simulator.answers import field_error, required
from runner.simulator.world import World


def read_samples(body: dict[str, Any], low: int, high: int) -> str:
    """Check the ``images`` list (count, base64, format); a digest of their content."""
    samples = body.get("images")
    if not isinstance(samples, list) or not low <= len(samples) <= high:
        count = len(samples) if isinstance(samples, list) else 0
        raise field_error("images", f"images must hold {low}-{high} images", count)
    digest = hashlib.sha256()
    for sample in samples:
        data = pictures.image_bytes(sample, "images")
        pictures.read_picture(data)
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def visual_schema(world: World, body: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/tailored-gen/generate_visual_schema {images: 5-10} -> {visual_schema}."""
    digest = read_samples(body, 5, 10)
    schema = {
        "style": "consistent character illustration",
        "colors": f"#{digest[:6]}",
        "subject": "the recurring character of the sample images",
        "sim_identity": digest[:16],
    }
    return {"visual_schema": json.dumps(schema, sort_keys=True)}


def caption_prefix(world: World, body: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/tailored-gen/generate_prefix {images: 1-6, ip_*} -> {prefix}. The key is
    unconfirmed in Bria's docs; the simulator answers ``prefix``."""
    read_samples(body, 1, 6)
    medium = body.get("ip_medium") or "illustration"
    name = body.get("ip_name") or "the character"
    article = "An" if str(medium)[:1].lower() in "aeiou" else "A"
    return {"prefix": f"{article} {medium} of {name}, "}


def refine(world: World, body: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/tailored-gen/refine_structured_prompt -> {structured_prompt}."""
    world.dataset(int(required(body, "dataset_id")))
    given, instruction = required(body, "structured_prompt"), required(body, "instruction")
    try:
        fields = json.loads(given)
    except (TypeError, ValueError):
        raise field_error("structured_prompt", "structured_prompt must be JSON", None) from None
    if not isinstance(fields, dict):
        raise field_error("structured_prompt", "structured_prompt must be a JSON object", None)
    fields["refinements"] = [*fields.get("refinements", []), str(instruction)]
    return {"structured_prompt": json.dumps(fields, sort_keys=True)}
