"""How the simulator answers the legacy routes once Bria has retired them
(``bria-run simulate --retire-legacy``, ``SimConfig.retire_legacy``).

Open points, decided here: Bria's 2026-08 OpenAPI no longer lists ``generate_prefix``,
``/v1/text-to-image/tailored`` or ``/v1/reimagine``, so a retired one answers as any path
Bria does not serve: 404 ``{"message": "Not Found"}``. ``training_version`` on a new model
is refused with a 400 naming the field ("no longer supported"), since the models route
itself lives on. ``caption_prefix`` on a dataset is then simply an unknown field: Bria
ignores unknown fields, and the schema check counts it.
"""

from __future__ import annotations

from typing import Any

from runner.simulator.answers import SimError, field_error, message

TG = "/v1/tailored-gen"
RETIRED_ROUTES = (
    f"POST {TG}/generate_prefix",
    "POST /v1/text-to-image/tailored/{id}",
    "POST /v1/reimagine",
)


def retired_answer(is_retired: bool, key: str, body: dict[str, Any]) -> SimError | None:
    """The answer of a retired legacy route or field, or None when it is still served."""
    if not is_retired:
        return None
    if key in RETIRED_ROUTES:
        return message(404, "Not Found")
    if key == f"POST {TG}/models" and body.get("training_version") is not None:
        return field_error("training_version", "training_version is no longer supported: "
                           "legacy models (light, max) were retired on 2026-07-01",
                           body["training_version"])
    return None
