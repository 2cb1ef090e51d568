"""Which Bria route a scene takes, and which of its fields reach that route's request.

One table, so nothing is dropped silently: validation refuses a scene field that its
route does not take (saying which route and why), the loader applies a
``generation.defaults`` value only to the scenes whose route takes it, and a test sends
every field down every route and checks that it arrived or was refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Every scene field a pipeline file may set except ``name`` (local: the output folder).
SCENE_FIELDS = ("prompt", "reference", "structure_strength", "aspect_ratio", "variations",
                "seed", "negative_prompt", "model_influence", "guidance_scale", "steps_num",
                "guidance")
VARIATIONS = "one request per variation, seeds seed, seed+1, ..."


@dataclass(frozen=True)
class SceneRoute:
    name: str  # e.g. "fibo reference"
    endpoint: str  # the generation request the fields go to
    takes: Mapping[str, str]  # scene field -> the request field it becomes
    refuses: Mapping[str, str]  # scene field -> why the route cannot take it

    def describe(self) -> str:
        return f"{self.name} ({self.endpoint})"


_FIBO_ONLY = "is for fibo only"
_GUIDANCE_LEGACY = "guidance images are for the legacy versions (light, max) only"
_NEEDS_REFERENCE = "structure_strength needs a `reference` image"
_COMMON = {"prompt": "prompt", "seed": "seed", "variations": VARIATIONS}
_FIBO = {**_COMMON, "aspect_ratio": "aspect_ratio", "negative_prompt": "negative_prompt",
         "model_influence": "tailored_model_influence", "guidance_scale": "guidance_scale",
         "steps_num": "steps_num"}

FIBO_TEXT = SceneRoute(
    "fibo text", "POST /v2/image/generate/tailored", _FIBO,
    {"structure_strength": _NEEDS_REFERENCE, "guidance": _GUIDANCE_LEGACY})
FIBO_REFERENCE = SceneRoute(
    "fibo reference",
    "POST /v2/structured_prompt/generate, then POST /v2/image/generate/tailored",
    {**_FIBO, "reference": "images (of /v2/structured_prompt/generate)"},
    {"structure_strength": "fibo reads the reference through a structured prompt and takes "
                           "no structure strength (that is for light and max)",
     "guidance": _GUIDANCE_LEGACY})
LEGACY_TEXT = SceneRoute(
    "legacy text", "POST /v1/text-to-image/tailored/{model_id}",
    {**_COMMON, "aspect_ratio": "aspect_ratio", "negative_prompt": "negative_prompt",
     "model_influence": "model_influence",
     "guidance": "guidance_method_N, guidance_method_N_image_file|_url, guidance_method_N_scale"},
    {"structure_strength": _NEEDS_REFERENCE, "guidance_scale": _FIBO_ONLY,
     "steps_num": _FIBO_ONLY})
LEGACY_REFERENCE = SceneRoute(
    "legacy reference", "POST /v1/reimagine",
    {**_COMMON, "reference": "structure_image_file|structure_image_url",
     "structure_strength": "structure_ref_influence",
     "model_influence": "tailored_model_influence"},
    {"aspect_ratio": "/v1/reimagine takes no aspect ratio: the result keeps the "
                     "reference's framing",
     "negative_prompt": "/v1/reimagine takes no negative prompt",
     "guidance": "/v1/reimagine takes no guidance images",
     "guidance_scale": _FIBO_ONLY, "steps_num": _FIBO_ONLY})

ROUTES = (FIBO_TEXT, FIBO_REFERENCE, LEGACY_TEXT, LEGACY_REFERENCE)


def scene_route(is_legacy: bool, has_reference: bool) -> SceneRoute:
    if is_legacy:
        return LEGACY_REFERENCE if has_reference else LEGACY_TEXT
    return FIBO_REFERENCE if has_reference else FIBO_TEXT


def version_takes(is_legacy: bool, field: str) -> bool:
    """Does any route of this version take ``field`` (so a default can apply somewhere)?"""
    routes = (LEGACY_TEXT, LEGACY_REFERENCE) if is_legacy else (FIBO_TEXT, FIBO_REFERENCE)
    return any(field in route.takes for route in routes)
