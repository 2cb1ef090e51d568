"""The legacy (light/max) routes of Bria: caption prefix and v1 generation.

Bria ended legacy model support on 2026-07-01 and its 2026-08 OpenAPI no longer lists
``generate_prefix``, ``/v1/text-to-image/tailored``, ``/v1/reimagine`` or
``training_version``. These calls stay for accounts that are still served, and every one
of them turns an answer that says "this route is gone" (404, 410, or a "not supported"
error) into ``LegacyRetired``, which tells the user what happened and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runner.bria.answers import ImageSource, image_field, results, text_field
from runner.bria.errors import ApiError
from runner.errors import LegacyRetired

TG = "/v1/tailored-gen"
RETIRED_STATUSES = (404, 410)
RETIRED_WORDS = ("not supported", "no longer supported", "deprecated", "retired")


def is_retired_answer(error: ApiError) -> bool:
    """Does Bria's error say that a legacy route or field is gone?"""
    if error.status in RETIRED_STATUSES:
        return True
    text = error.bria_message.lower()
    return error.status in (400, 422) and any(word in text for word in RETIRED_WORDS)


class LegacyRoutes:
    """Mixed into ``BriaClient``: the legacy calls, each mapped to ``LegacyRetired``."""

    def _answer(
        self, method: str, template: str, body: dict[str, Any] | None = None, **ids: int | str
    ) -> tuple[int, Any]:
        raise NotImplementedError  # pragma: no cover - BriaClient provides it

    def _legacy(
        self, method: str, template: str, body: dict[str, Any], **ids: int | str
    ) -> tuple[int, Any]:
        try:
            return self._answer(method, template, body, **ids)
        except ApiError as exc:
            if is_retired_answer(exc):
                raise LegacyRetired(method, template, exc.status, exc.bria_message) from exc
            raise

    def generate_prefix(
        self, images: Sequence[ImageSource], *, ip_type: str, ip_medium: str,
        ip_name: str | None,
    ) -> str:
        """The caption prefix from 1-6 images (answer key ``prefix`` or ``caption_prefix``,
        or a bare JSON string: Bria never fixed it)."""
        body = {
            "images": [image_field(i) for i in images],
            "ip_type": ip_type,
            "ip_medium": ip_medium,
            "ip_name": ip_name,
        }
        path = f"{TG}/generate_prefix"
        return text_field(path, *self._legacy("POST", path, body), "prefix", "caption_prefix")

    def text_to_image_tailored(
        self,
        model_id: int,
        *,
        prompt: str,
        num_results: int = 1,
        aspect_ratio: str | None = None,
        seed: int | None = None,
        model_influence: float | None = None,
        negative_prompt: str | None = None,
        guidance: Sequence[tuple[str, ImageSource, float]] = (),
    ) -> list[dict[str, Any]]:
        """Text-to-image: ``[{"urls": [...], "seed": n}, ...]``; the files appear later.
        ``guidance``: up to two (method, image file or https URL, scale)."""
        body: dict[str, Any] = {
            "prompt": prompt,
            "num_results": num_results,
            "aspect_ratio": aspect_ratio,
            "seed": seed,
            "model_influence": model_influence,
            "negative_prompt": negative_prompt,
            "sync": False,
        }
        for n, (method, image, scale) in enumerate(guidance, start=1):
            body[f"guidance_method_{n}"] = method
            suffix = "url" if isinstance(image, str) else "file"
            body[f"guidance_method_{n}_image_{suffix}"] = image_field(image)
            body[f"guidance_method_{n}_scale"] = scale
        template = "/v1/text-to-image/tailored/{id}"
        return results(self._legacy("POST", template, body, id=model_id)[1])

    def reimagine(
        self,
        *,
        prompt: str,
        structure_image: ImageSource,
        structure_ref_influence: float | None,
        tailored_model_id: int,
        tailored_model_influence: float | None = None,
        num_results: int = 1,
        seed: int | None = None,
    ) -> list[dict[str, Any]]:
        """The scene image restyled with the character; ``[{"urls": [...]}, ...]``. It takes
        no aspect ratio, negative prompt or guidance (validation refuses them)."""
        key = "structure_image_url" if isinstance(structure_image, str) else "structure_image_file"
        body = {
            "prompt": prompt,
            key: image_field(structure_image),
            "structure_ref_influence": structure_ref_influence,
            "tailored_model_id": tailored_model_id,
            "tailored_model_influence": tailored_model_influence,
            "num_results": num_results,
            "seed": seed,
            "sync": False,
        }
        return results(self._legacy("POST", "/v1/reimagine", body)[1])
