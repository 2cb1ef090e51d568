"""The Bria HTTP client: both generations of the Tailored Generation API.

Training and CRUD live under ``/v1/tailored-gen``; generation under ``/v2`` (fibo, always
async: submit, then poll ``/v2/status/{id}``). The legacy (light/max) routes live in
``runner.bria.legacy``, mixed in here. Field names and types follow Bria's published
OpenAPI: ids of Bria resources are ints under ``/v1/tailored-gen``, but the v2 routes take
``tailored_model_id`` as a string; request ids of async jobs are strings.

Every call goes through one ``ApiSession`` (rate limit per endpoint, retries of
GET/PUT/DELETE only, typed errors from ``runner.errors``). Images are read and
base64-encoded one call at a time, so memory does not grow with their number; an image
given as an ``https://`` URL is passed to Bria as that URL, never fetched here.
The client is thread-safe: the engine calls it from a thread pool.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, BinaryIO, Self

import httpx

from runner.bria import result_links
from runner.bria.answers import (
    ImageSource,
    Job,
    JobStatus,
    as_dict,
    as_list,
    image_field,
    json_or_none,
    submitted_job,
    text_field,
)
from runner.bria.env import api_root, base_url_from_env, token_from_env
from runner.bria.errors import ApiError, JobLost
from runner.bria.legacy import LegacyRoutes
from runner.bria.limiter import Budget, RateLimiter
from runner.bria.retry import RetryPolicy
from runner.bria.session import CREATE_READ_TIMEOUT, ApiSession, Call
from runner.errors import LegacyRetired

TG = "/v1/tailored-gen"


class BriaClient(LegacyRoutes):
    """Bria's API as methods. Use as a context manager, or call ``close()``."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        rpm: int | None = 60,
        window: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        max_retries: int = 3,
        timeout: httpx.Timeout | None = None,
        read_timeout: float | None = None,
        create_timeout: float = CREATE_READ_TIMEOUT,
        outage_tolerance: float = 0.0,
        retry_base: float = 4.0,
        on_wait: Callable[[str, float], None] | None = None,
        on_outage: Callable[[str, float], None] | None = None,
        budget: Budget | None = None,
        interrupt: threading.Event | None = None,
        result_limits: result_links.ResultLimits | None = None,
    ) -> None:
        """``budget``: request slots shared with other clients (other pipelines, other
        runners); by default the client has its own, ``rpm`` per ``window`` per endpoint.
        ``create_timeout``: the read timeout of POSTs (at least 90 s: see session.py);
        ``outage_tolerance``: seconds an idempotent request keeps being retried after its
        quick retries, telling ``on_outage(endpoint, seconds down)`` before each try;
        ``interrupt`` set (Ctrl-C) cuts a back-off short, raising Interrupted."""
        self.base_url = api_root(base_url)
        self._sleep, self._clock = sleep, clock
        if timeout is None and read_timeout is not None:
            timeout = httpx.Timeout(connect=10.0, read=read_timeout, write=10.0, pool=30.0)
        self._result_limits = result_limits or result_links.ResultLimits()
        self.limiter: Budget = budget if budget is not None else RateLimiter(
            rpm, window, clock=clock, sleep=sleep, on_wait=on_wait)
        self._session = ApiSession(
            self.base_url,
            token,
            limiter=self.limiter,
            policy=RetryPolicy(max_retries=max_retries, base=retry_base,
                               patience=outage_tolerance),
            transport=transport,
            sleep=sleep,
            rand=rand,
            timeout=timeout,
            create_timeout=create_timeout,
            on_wait=on_wait,
            clock=clock,
            on_outage=on_outage,
            interrupt=interrupt,
        )

    @classmethod
    def from_env(cls, **kw: Any) -> BriaClient:
        """A client for ``BRIA_API_URL`` (default Bria's production) with ``BRIA_API_TOKEN``."""
        return cls(base_url_from_env(), token_from_env(), **kw)

    def __repr__(self) -> str:
        return f"BriaClient(base_url={self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` of something the caller retries itself
        (the engine's POSTs): the same policy as the client's own retries."""
        return self._session.backoff(retry)

    def stats(self) -> dict[str, dict[str, float]]:
        """Per endpoint ("METHOD /path/{id}"): requests sent (retries included), retries,
        429s seen, seconds waited (rate limiter and back-off)."""
        return self._session.stats()

    def waited_here(self) -> float:
        """Seconds the calling thread has waited for rate-limit slots so far."""
        return self._session.waited_here()

    # --- plumbing -------------------------------------------------------------------

    def _call(
        self, method: str, template: str, body: dict[str, Any] | None = None, **ids: int | str
    ) -> Any:
        """Send one API call and return its decoded JSON body (None when empty)."""
        return self._answer(method, template, body, **ids)[1]

    def _answer(
        self, method: str, template: str, body: dict[str, Any] | None = None, **ids: int | str
    ) -> tuple[int, Any]:
        """Send one API call: its status and decoded JSON body (text if not JSON)."""
        path = template.format(**ids) if ids else template
        response = self._session.send(Call(method, template, path, body))
        if not response.content:
            return response.status_code, None
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    # --- /v1/tailored-gen: projects, datasets, images ---------------------------------

    def create_project(
        self,
        *,
        project_name: str,
        ip_type: str,
        ip_medium: str,
        ip_name: str | None = None,
        ip_description: str | None = None,
        project_description: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "project_name": project_name,
            "ip_type": ip_type,
            "ip_medium": ip_medium,
            "ip_name": ip_name,
            "ip_description": ip_description,
            "project_description": project_description,
        }
        return as_dict(self._call("POST", f"{TG}/projects", body))

    def list_projects(self) -> list[dict[str, Any]]:
        return as_list(self._call("GET", f"{TG}/projects"), "projects")

    def get_project(self, project_id: int) -> dict[str, Any]:
        return as_dict(self._call("GET", f"{TG}/projects/{{id}}", id=project_id))

    def delete_project(self, project_id: int) -> None:
        self._call("DELETE", f"{TG}/projects/{{id}}", id=project_id)

    def create_dataset(self, *, project_id: int, name: str) -> dict[str, Any]:
        body = {"project_id": project_id, "name": name}
        return as_dict(self._call("POST", f"{TG}/datasets", body))

    def list_datasets(self, project_id: int) -> list[dict[str, Any]]:
        found = self._call("GET", f"{TG}/projects/{{id}}/datasets", id=project_id)
        return as_list(found, "datasets")

    def get_dataset(self, dataset_id: int) -> dict[str, Any]:
        return as_dict(self._call("GET", f"{TG}/datasets/{{id}}", id=dataset_id))

    def delete_dataset(self, dataset_id: int) -> None:
        """Delete a dataset and its images (204; 409 while a model trains on it)."""
        self._call("DELETE", f"{TG}/datasets/{{id}}", id=dataset_id)

    def update_dataset(self, dataset_id: int, **fields: Any) -> dict[str, Any]:
        """PUT ``visual_schema``, ``caption_prefix`` or ``status="completed"``."""
        return as_dict(self._call("PUT", f"{TG}/datasets/{{id}}", fields, id=dataset_id))

    def list_images(self, dataset_id: int) -> list[dict[str, Any]]:
        found = self._call("GET", f"{TG}/datasets/{{id}}/images", id=dataset_id)
        return as_list(found, "images")

    def upload_image(
        self,
        dataset_id: int,
        image: ImageSource,
        *,
        image_name: str,
        increase_resolution: bool = True,
        content_moderation: bool = False,
    ) -> dict[str, Any]:
        """Upload ONE image under ``image_name``: a file (base64 in field ``file``) or an
        https URL (field ``image_url``, fetched by Bria)."""
        body = {
            "image_url" if isinstance(image, str) else "file": image_field(image),
            "image_name": image_name,
            "increase_resolution": increase_resolution,
            "content_moderation": content_moderation,
        }
        found = self._call("POST", f"{TG}/datasets/{{id}}/images", body, id=dataset_id)
        return as_dict(found)

    def update_image_caption(
        self, dataset_id: int, image_id: int, caption: str | None
    ) -> dict[str, Any]:
        """Set one image's caption (Bria marks it ``caption_source: manual``), or with None
        let Bria write it again (``regenerate_caption``). Draft datasets only (else 409)."""
        template = f"{TG}/datasets/{{dataset_id}}/images/{{image_id}}"
        body: dict[str, Any] = ({"caption": caption} if caption is not None
                                else {"regenerate_caption": True})
        return as_dict(self._call("PUT", template, body, dataset_id=dataset_id,
                                  image_id=image_id))

    # --- identity -----------------------------------------------------------------------

    def generate_visual_schema(self, images: Sequence[ImageSource]) -> str:
        """fibo: Bria's visual schema (a JSON string) from 5-10 sample images."""
        body = {"images": [image_field(i) for i in images]}
        path = f"{TG}/generate_visual_schema"
        return text_field(path, *self._answer("POST", path, body), "visual_schema")

    def refine_structured_prompt(
        self, *, dataset_id: int, structured_prompt: str, instruction: str
    ) -> str:
        body = {
            "dataset_id": dataset_id,
            "structured_prompt": structured_prompt,
            "instruction": instruction,
        }
        path = f"{TG}/refine_structured_prompt"
        return text_field(path, *self._answer("POST", path, body), "structured_prompt")

    # --- models and training ------------------------------------------------------------

    def create_model(
        self, *, name: str, dataset_id: int, training_mode: str,
        training_version: str | None = None,
    ) -> dict[str, Any]:
        """Create a model (published fields: name, dataset_id, training_mode). Only the
        legacy flow adds ``training_version`` (light/max), which Bria no longer lists."""
        body = {"name": name, "dataset_id": dataset_id, "training_mode": training_mode}
        if training_version is None:
            return as_dict(self._call("POST", f"{TG}/models", body))
        try:
            return as_dict(self._call("POST", f"{TG}/models",
                                      {**body, "training_version": training_version}))
        except ApiError as exc:
            if exc.status in (400, 422) and "training_version" in exc.bria_message:
                raise LegacyRetired("POST", f"{TG}/models", exc.status,
                                    exc.bria_message) from exc
            raise

    def list_models(self, project_id: int) -> list[dict[str, Any]]:
        found = self._call("GET", f"{TG}/projects/{{id}}/models", id=project_id)
        return as_list(found, "models")

    def get_model(self, model_id: int) -> dict[str, Any]:
        return as_dict(self._call("GET", f"{TG}/models/{{id}}", id=model_id))

    def start_training(self, model_id: int, **expert: Any) -> dict[str, Any]:
        """Start training (``expert``: rank, learning_rate, ... for expert mode only)."""
        found = self._call("POST", f"{TG}/models/{{id}}/start_training", expert, id=model_id)
        return as_dict(found)

    def delete_model(self, model_id: int) -> None:
        self._call("DELETE", f"{TG}/models/{{id}}", id=model_id)

    # --- v2 generation (async) ------------------------------------------------------------

    def generate_tailored(
        self,
        *,
        tailored_model_id: int | str,
        prompt: str | None = None,
        structured_prompt: str | None = None,
        negative_prompt: str | None = None,
        seed: int | None = None,
        aspect_ratio: str | None = None,
        tailored_model_influence: float | None = None,
        guidance_scale: int | None = None,
        steps_num: int | None = None,
    ) -> Job:
        """Submit one fibo image (never ``sync: true``: the CDN cuts answers at 60 s).
        ``tailored_model_id`` goes out as a string, the type Bria publishes for it."""
        body = {
            "tailored_model_id": str(tailored_model_id),
            "prompt": prompt,
            "structured_prompt": structured_prompt,
            "negative_prompt": negative_prompt,
            "seed": seed,
            "aspect_ratio": aspect_ratio,
            "tailored_model_influence": tailored_model_influence,
            "guidance_scale": guidance_scale,
            "steps_num": steps_num,
            "sync": False,
        }
        path = "/v2/image/generate/tailored"
        return submitted_job(path, *self._answer("POST", path, body))

    def generate_structured_prompt(
        self, *, images: Sequence[ImageSource], prompt: str | None = None
    ) -> Job:
        """Submit a scene reference (a file or an https URL); the job's result carries its
        ``structured_prompt``."""
        body = {"images": [image_field(i) for i in images], "prompt": prompt, "sync": False}
        path = "/v2/structured_prompt/generate"
        return submitted_job(path, *self._answer("POST", path, body))

    def get_status(self, request_id: str) -> JobStatus:
        """One poll of a v2 job. A 404 ``NOT_FOUND`` raises JobLost."""
        template = "/v2/status/{id}"
        call = Call("GET", template, template.format(id=request_id))
        response = self._session.send(call, accept=(404,))
        body = json_or_none(response)
        body = body if isinstance(body, dict) else {}
        if response.status_code == 404:
            raise JobLost(request_id, str(body.get("status") or "NOT_FOUND"))
        return JobStatus(str(body.get("status", "UNKNOWN")), body.get("result"), body.get("error"))


    # --- result links (signed CDN URLs: no token, no rate limit) ---------------------------

    def wait_url(self, url: str, *, poll_every: float = 1.0, timeout: float = 900.0) -> None:
        """Poll a legacy result link with a ranged GET until it serves content.
        404 means not ready yet; 403/410 raise ResultExpired; JobTimeout after ``timeout``."""
        result_links.wait_until_served(
            self._session,
            url,
            sleep=self._sleep,
            clock=self._clock,
            poll_every=poll_every,
            timeout=timeout,
        )

    def download(self, url: str, out: BinaryIO) -> str:
        """Stream a result link into ``out``; returns the sha256 hex of what was written.
        403/404/410 raise ResultExpired; a forbidden address ResultRefused; too large, too
        slow or not an image ResultInvalid (``result_links.ResultLimits``). A dropped
        transfer is retried from the start when ``out`` can be rewound."""
        return result_links.download(self._session, url, out, limits=self._result_limits,
                                     clock=self._clock)
