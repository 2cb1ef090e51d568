"""Bria's paths, mapped to world operations.

Each route names its template (the key of rate limits and stats, spelled as the client's
limiter spells it: ``POST /v1/tailored-gen/datasets/{id}/images``) and whether it changes
the world (then the world is saved after it, when persisted).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runner.simulator import identity, jobs
from runner.simulator.world import World

Handler = Callable[[World, str, dict[str, Any]], tuple[int, Any]]
TG = "/v1/tailored-gen"


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler
    pattern: re.Pattern[str]

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def is_v2(self) -> bool:
        return self.template.startswith("/v2/")

    @property
    def is_mutating(self) -> bool:
        return self.method != "GET"


def route(method: str, template: str, handler: Handler) -> Route:
    # v1 ids are integers: a non-integer id matches no route (404), as on Bria.
    id_part = r"[A-Za-z0-9_-]+" if template.startswith("/v2/") else r"\d+"
    pattern = re.sub(r"\\\{(\w+)\\\}", lambda m: f"(?P<{m.group(1)}>{id_part})",
                     re.escape(template))
    return Route(method, template, handler, re.compile("^" + pattern + "$"))


def _two_ids(joined: str) -> tuple[int, int]:
    first, second = joined.split("/")
    return int(first), int(second)


def ok(status: int, answer: Any) -> tuple[int, Any]:
    return status, answer


def deleted(delete: Callable[[int], None], ident: str) -> tuple[int, Any]:
    delete(int(ident))
    return 204, None


ROUTES: tuple[Route, ...] = (
    route("POST", f"{TG}/projects", lambda w, i, b: ok(201, w.create_project(b))),
    route("GET", f"{TG}/projects", lambda w, i, b: ok(200, w.list_projects())),
    route("GET", f"{TG}/projects/{{id}}", lambda w, i, b: ok(200, w.project(int(i)).show())),
    route("DELETE", f"{TG}/projects/{{id}}", lambda w, i, b: deleted(w.delete_project, i)),
    route("POST", f"{TG}/datasets", lambda w, i, b: ok(201, w.create_dataset(b))),
    route("GET", f"{TG}/projects/{{id}}/datasets",
          lambda w, i, b: ok(200, w.list_datasets(int(i)))),
    route("GET", f"{TG}/datasets/{{id}}", lambda w, i, b: ok(200, w.get_dataset(int(i)))),
    route("PUT", f"{TG}/datasets/{{id}}", lambda w, i, b: ok(200, w.update_dataset(int(i), b))),
    route("DELETE", f"{TG}/datasets/{{id}}", lambda w, i, b: deleted(w.delete_dataset, i)),
    route("POST", f"{TG}/datasets/{{id}}/images",
          lambda w, i, b: ok(201, w.upload_image(int(i), b))),
    route("GET", f"{TG}/datasets/{{id}}/images", lambda w, i, b: ok(200, w.list_images(int(i)))),
    # Two ids: the handler gets them as "dataset_id/image_id".
    route("PUT", f"{TG}/datasets/{{dataset_id}}/images/{{image_id}}",
          lambda w, i, b: ok(200, w.update_image(*_two_ids(i), b))),
    route("POST", f"{TG}/generate_visual_schema",
          lambda w, i, b: ok(200, identity.visual_schema(w, b))),
    route("POST", f"{TG}/generate_prefix", lambda w, i, b: ok(200, identity.caption_prefix(w, b))),
    route("POST", f"{TG}/refine_structured_prompt",
          lambda w, i, b: ok(200, identity.refine(w, b))),
    route("POST", f"{TG}/models", lambda w, i, b: ok(201, w.create_model(b))),
    route("GET", f"{TG}/models", lambda w, i, b: ok(200, w.list_models())),
    route("GET", f"{TG}/projects/{{id}}/models", lambda w, i, b: ok(200, w.list_models(int(i)))),
    route("GET", f"{TG}/models/{{id}}",
          lambda w, i, b: ok(200, w.model(int(i)).show(w.clock()))),
    route("POST", f"{TG}/models/{{id}}/start_training",
          lambda w, i, b: ok(200, w.start_training(int(i), b))),
    route("DELETE", f"{TG}/models/{{id}}", lambda w, i, b: deleted(w.delete_model, i)),
    route("POST", "/v2/image/generate/tailored", lambda w, i, b: jobs.submit_tailored(w, b)),
    route("POST", "/v2/structured_prompt/generate",
          lambda w, i, b: jobs.submit_structured_prompt(w, b)),
    route("GET", "/v2/status/{id}", lambda w, i, b: jobs.status(w, i)),
    route("POST", "/v1/text-to-image/tailored/{id}",
          lambda w, i, b: ok(200, jobs.text_to_image(w, int(i), b))),
    route("POST", "/v1/reimagine", lambda w, i, b: ok(200, jobs.reimagine(w, b))),
)


def find(method: str, path: str) -> tuple[Route | None, str, bool]:
    """The route for a request, its id (ids joined by "/"), and whether the path exists
    under another method."""
    other_method = False
    for candidate in ROUTES:
        found = candidate.pattern.match(path)
        if found is None:
            continue
        if candidate.method == method:
            return candidate, "/".join(found.groups()), False
        other_method = True
    return None, "", other_method
