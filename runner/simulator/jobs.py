"""Generation in the simulated world: v2 async jobs, legacy result links, scene references.

A job is a record with the time it becomes ready; its status, its result link and the
link's expiry are all computed from the clock, so nothing runs in the background and a
persisted job keeps its timing across restarts. Images are rendered only when a link
is downloaded (``render.py``).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import uuid
from dataclasses import dataclass
from typing import Any

from PIL import Image

from runner.simulator import images as pictures
from runner.simulator.answers import (
    SimError,
    as_v2,
    field_error,
    message,
    number_in,
    one_of,
    required,
    v2_error,
)
from runner.simulator.records import LEGACY_VERSIONS, Model
from runner.simulator.render import RenderSpec, size_for
from runner.simulator.world import IMAGE_CREDITS, World

ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9")
GUIDANCE_METHODS = (
    "controlnet_canny", "controlnet_depth", "controlnet_recoloring", "controlnet_color_grid",
)
SCENE_SIDE = 512  # scene references are kept this small; results are upscaled from them


@dataclass
class Job:
    request_id: str
    kind: str  # "image" | "structured_prompt"
    created: float
    ready_at: float
    link_ttl: float
    seed: int
    prompt: str = ""
    aspect_ratio: str = "1:1"
    model_id: int | None = None
    scene: str | None = None  # key into World.scenes
    scene_influence: float = 1.0
    structured_prompt: str | None = None
    outcome: str = "COMPLETED"  # COMPLETED | ERROR | UNKNOWN, known at submission

    def link_path(self) -> str:
        return f"/__sim/results/{self.request_id}.png"


# --- v2 ----------------------------------------------------------------------------------


def submit_tailored(world: World, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /v2/image/generate/tailored: 202 {request_id, status_url} (200 with sync)."""
    try:
        model = generation_model(world, body.get("tailored_model_id"), legacy=False)
        check_v2_body(world, body)
        structured = body.get("structured_prompt")
        scene, described = scene_of(world, structured)
    except SimError as error:
        raise as_v2(error) from None
    prompt = body.get("prompt") or described
    job = new_job(world, "image", body, model=model, prompt=prompt)
    job.scene = scene
    job.structured_prompt = structured or describe(prompt, scene, job.seed)
    account_image(world, "/v2/image/generate/tailored", body)
    return answer_v2(world, job, body)


def check_v2_body(world: World, body: dict[str, Any]) -> None:
    if not body.get("prompt") and not body.get("structured_prompt"):
        raise field_error("prompt", "prompt or structured_prompt is required")
    one_of(body, "aspect_ratio", ASPECT_RATIOS)
    number_in(body, "tailored_model_influence", 0, 1.5)
    number_in(body, "guidance_scale", 3, 5)
    number_in(body, "steps_num", 20, 50)
    check_seed(body)
    if world.is_moderated(str(body.get("prompt") or "")):
        raise message(422, "The prompt failed content moderation")


def submit_structured_prompt(world: World, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /v2/structured_prompt/generate: images (one scene) and/or prompt -> async JSON."""
    images, prompt, given = body.get("images"), body.get("prompt"), body.get("structured_prompt")
    if not images and not prompt:
        raise v2_error(400, "Provide prompt, images, or structured_prompt with prompt")
    if images is not None and (not isinstance(images, list) or len(images) > 1):
        raise v2_error(400, "images must be a list of at most one image")
    if world.is_moderated(str(prompt or "")):
        raise v2_error(422, "The prompt failed content moderation")
    try:
        scene = keep_scene(world, images[0]) if images else scene_of(world, given)[0]
        check_seed(body)
    except SimError as error:
        raise as_v2(error) from None
    job = new_job(world, "structured_prompt", body, model=None, prompt=str(prompt or ""))
    job.scene = scene
    job.structured_prompt = describe(job.prompt, scene, job.seed)
    return answer_v2(world, job, body)


def answer_v2(world: World, job: Job, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if body.get("sync"):
        job.ready_at = job.created
        return 200, {"request_id": job.request_id, **status(world, job.request_id)[1]}
    url = f"{world.base_url}/v2/status/{job.request_id}"
    return 202, {"request_id": job.request_id, "status_url": url}


def status(world: World, request_id: str) -> tuple[int, dict[str, Any]]:
    """GET /v2/status/{id}: 200 whatever the outcome; 404 NOT_FOUND if unknown/expired."""
    job = world.jobs.get(request_id)
    now = world.clock()
    if job is None or now > job.ready_at + world.config.job_ttl:
        return 404, {"status": "NOT_FOUND", "request_id": request_id}
    if now < job.ready_at:
        return 200, {"status": "IN_PROGRESS", "request_id": request_id}
    if job.outcome == "ERROR":
        error = {"code": 500, "message": "Generation failed", "details": "simulated failure"}
        return 200, {"status": "ERROR", "request_id": request_id, "error": error}
    if job.outcome == "UNKNOWN":
        return 200, {"status": "UNKNOWN", "request_id": request_id}
    result: dict[str, Any] = {"seed": job.seed, "structured_prompt": job.structured_prompt}
    if job.kind == "image":
        result["image_url"] = world.base_url + job.link_path()
    return 200, {"status": "COMPLETED", "request_id": request_id, "result": result}


# --- legacy v1 (sync=false: URLs at once, files later) -------------------------------------


def text_to_image(world: World, model_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/text-to-image/tailored/{model_id} -> {"result": [{"urls", "seed"}, ...]}."""
    model = generation_model(world, model_id, legacy=True)
    prompt = str(required(body, "prompt"))
    check_legacy_body(world, body, prompt)
    number_in(body, "model_influence", 0, 1)
    for n in (1, 2):
        if body.get(f"guidance_method_{n}") is not None:
            one_of(body, f"guidance_method_{n}", GUIDANCE_METHODS)
            given = body.get(f"guidance_method_{n}_image_file") or body.get(
                f"guidance_method_{n}_image_url")
            data = pictures.image_bytes(given, f"guidance_method_{n}_image_file")
            pictures.read_picture(data)
            number_in(body, f"guidance_method_{n}_scale", 0, 1)
    return legacy_results(world, "/v1/text-to-image/tailored/{id}", body, model, prompt, None)


def reimagine(world: World, body: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/reimagine: the structure image restyled with the tailored model."""
    prompt = str(required(body, "prompt"))
    model = generation_model(world, body.get("tailored_model_id"), legacy=True)
    check_legacy_body(world, body, prompt)
    number_in(body, "structure_ref_influence", 0, 1)
    number_in(body, "tailored_model_influence", 0, 1.5)
    given = body.get("structure_image_file") or body.get("structure_image_url")
    if given is None:
        raise field_error("structure_image_file", "structure_image_file or URL is required")
    scene = keep_scene(world, given)
    return legacy_results(world, "/v1/reimagine", body, model, prompt, scene)


def check_legacy_body(world: World, body: dict[str, Any], prompt: str) -> None:
    number_in(body, "num_results", 1, 4)
    one_of(body, "aspect_ratio", ASPECT_RATIOS)
    check_seed(body)
    if world.is_moderated(prompt):
        raise message(422, "The prompt failed content moderation")


def legacy_results(
    world: World, path: str, body: dict[str, Any], model: Model, prompt: str, scene: str | None
) -> dict[str, Any]:
    account_image(world, path, body, count=int(body.get("num_results") or 1))
    results = []
    for n in range(int(body.get("num_results") or 1)):
        job = new_job(world, "image", body, model=model, prompt=prompt, offset=n)
        job.scene = scene
        influence = body.get("structure_ref_influence")
        job.scene_influence = 0.75 if influence is None else float(influence)
        if body.get("sync"):
            job.ready_at = job.created
        results.append({"urls": [world.base_url + job.link_path()], "seed": job.seed,
                        "uuid": job.request_id})
    return {"result": results}


def link(world: World, request_id: str) -> tuple[int, Job | None]:
    """A result link: 404 until the job is ready, then 200 for link_ttl, then 403 (an
    expired signed link answers 403 on S3, which serves Bria's results)."""
    job = world.jobs.get(request_id)
    now = world.clock()
    if job is None or job.kind != "image" or now < job.ready_at or job.outcome != "COMPLETED":
        return 404, None
    if now >= job.ready_at + job.link_ttl:
        return 403, None
    return 200, job


# --- shared ------------------------------------------------------------------------------


def generation_model(world: World, model_id: Any, *, legacy: bool) -> Model:
    """The trained model a generation names. Unknown ids: v2 answers 403 ("not in your
    organisation", the contract's wording), legacy 404. Not trained yet: 412, because the
    model exists but a precondition (Completed) is unmet, as for training on a draft."""
    model_id = _model_number(model_id, legacy=legacy)
    if model_id not in world.models:
        if legacy:
            raise message(404, f"Model {model_id} not found")
        raise v2_error(403, f"Tailored model {model_id} does not belong to your organization")
    model = world.models[model_id]
    state = model.status(world.clock())
    if state != "Completed":
        raise message(412, f"Model {model_id} is not ready for generation (status {state})")
    if (model.training_version in LEGACY_VERSIONS) != legacy:
        other = "/v1 legacy endpoints" if model.training_version else "/v2/image/generate/tailored"
        raise message(400, f"Model {model_id} was trained with "
                      f"{model.training_version or 'fibo'}; use {other}")
    return model


def _model_number(given: Any, *, legacy: bool) -> int | None:
    """The model a generation names, in the type its route publishes: a string on v2
    ("4001", which names model 4001; any other string names no model), an integer on the
    legacy routes. The schema check has already refused other types."""
    if legacy:
        if isinstance(given, bool) or not isinstance(given, int):
            raise field_error("tailored_model_id", "tailored_model_id must be an integer", given)
        return given
    if not isinstance(given, str):
        raise field_error("tailored_model_id", "tailored_model_id must be a string", given)
    return int(given) if given.isdigit() else None


def unseeded(seed: int, kind: str, body: dict[str, Any]) -> int:
    """The seed of a job asked without one: Bria draws one at random; the simulator draws it
    from its own ``seed`` and the request, so a run replays (a structured prompt re-sent in a
    storm reads the same, and the generation that carries it meets the same faults)."""
    text = f"{seed}|{kind}|{json.dumps(body, sort_keys=True)}"
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % (2**31)


def new_job(
    world: World, kind: str, body: dict[str, Any], *, model: Model | None, prompt: str,
    offset: int = 0,
) -> Job:
    now, config = world.clock(), world.config
    seed = body.get("seed")
    seed = (int(seed) + offset) if seed is not None else unseeded(config.seed, kind, body)
    delay = config.generation_seconds + generation_extra(world)
    if model is not None and not model.has_generated:
        delay += config.cold_start
        model.has_generated = True
    job = Job(
        uuid.uuid4().hex, kind, now, now + delay, config.link_ttl, seed, prompt,
        body.get("aspect_ratio") or "1:1", model.id if model else None,
    )
    job.outcome = outcome_for(world, prompt)
    world.jobs[job.request_id] = job
    world.accounts.created["generation_jobs"] += 1
    return job


def generation_extra(world: World) -> float:
    """The next job's share of ``generation_spread``."""
    config = world.config
    return job_extra(config.seed, world.accounts.created["generation_jobs"],
                     config.generation_spread)


def job_extra(seed: int, number: int, spread: float) -> float:
    """Job ``number``'s extra seconds: the same for every run with one seed (benchmarks
    compute the floor from them)."""
    return spread * random.Random(f"{seed}|{number}").random() if spread > 0 else 0.0


def outcome_for(world: World, prompt: str) -> str:
    lowered = prompt.lower()
    if any(word.lower() in lowered for word in world.config.error_words):
        return "ERROR"
    if any(word.lower() in lowered for word in world.config.unknown_words):
        return "UNKNOWN"
    return "COMPLETED"


def account_image(world: World, path: str, body: dict[str, Any], count: int = 1) -> None:
    """Charge per image at submission, and note payloads that were submitted before."""
    world.accounts.credits += IMAGE_CREDITS * count
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    world.accounts.names[f"generations|{path}|{digest}"] += 1


def check_seed(body: dict[str, Any]) -> None:
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise field_error("seed", "seed must be an integer", seed)


def keep_scene(world: World, encoded: Any) -> str:
    """Store a scene reference (small JPEG) by content hash; returns its key."""
    picture_bytes = pictures.image_bytes(encoded, "images")
    pictures.read_picture(picture_bytes)  # 413 / 415 / 400 as for uploads
    key = hashlib.sha256(picture_bytes).hexdigest()[:32]
    if key not in world.scenes:
        with Image.open(io.BytesIO(picture_bytes)) as image:
            small = image.convert("RGB")
            small.thumbnail((SCENE_SIDE, SCENE_SIDE))
        out = io.BytesIO()
        small.save(out, format="JPEG", quality=85)
        world.scenes[key] = out.getvalue()
    return key


def describe(prompt: str, scene: str | None, seed: int) -> str:
    """A structured prompt (JSON string). ``sim_scene`` carries the scene reference so a
    later generation with this structured prompt composites the character into it."""
    fields: dict[str, Any] = {
        "short_description": prompt,
        "objects": [{"description": "the tailored character", "location": "center"}],
        "background_setting": "the reference scene" if scene else prompt,
        "style_medium": "as trained",
        "sim_seed": seed,
    }
    if scene:
        fields["sim_scene"] = scene
    return json.dumps(fields, sort_keys=True)


def scene_of(world: World, structured: Any) -> tuple[str | None, str]:
    """The scene key and description inside a structured prompt (400 if not JSON)."""
    if not structured:
        return None, ""
    try:
        fields = json.loads(structured) if isinstance(structured, str) else None
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        raise field_error("structured_prompt", "structured_prompt must be a JSON object string")
    scene = fields.get("sim_scene")
    return (scene if scene in world.scenes else None), str(fields.get("short_description", ""))


def render_spec(world: World, job: Job) -> RenderSpec:
    """Everything a render needs, copied out of the world (rendering runs unlocked)."""
    width, height = size_for(job.aspect_ratio, world.config.result_size)
    characters: tuple[bytes, ...] = ()
    model = world.models.get(job.model_id) if job.model_id is not None else None
    dataset = world.datasets.get(model.dataset_id) if model else None
    if dataset is not None:
        # By name, not upload order: concurrent uploads land in any order, and a result
        # must depend only on the request and the dataset's content.
        names = sorted(dataset.image_ids, key=lambda i: world.images[i].image_name)
        characters = tuple(world.images[i].thumbnail for i in names)
    scene = world.scenes.get(job.scene) if job.scene else None
    return RenderSpec(width, height, job.seed, job.prompt, characters, scene, job.scene_influence)
