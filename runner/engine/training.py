"""The training chain, one small function per step kind.

Each function takes the context, the planned step and its state row, and returns the
remote id and the outputs to record. Every POST goes through ``ensure_remote`` with a
reconciler that finds the resource again by its deterministic name.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from runner.bria.failures import failure_reasons
from runner.engine.context import Context, Outcome
from runner.engine.plan import PlannedStep
from runner.engine.remote import Answer, ensure_remote
from runner.errors import Conflict, DatasetIncomplete, TrainingFailed
from runner.events import EventKind
from runner.pipeline.spec import ImageRef, image_key
from runner.state.rows import StepKind, StepRow

DONE_STATUSES = ("Completed",)
FAILED_STATUSES = ("Failed", "Stopped")


def remote_name(ctx: Context, step: PlannedStep) -> str:
    """Deterministic remote names (pipeline name + short fingerprint) make reconciling possible."""
    return f"{ctx.pipeline.name}-{step.fingerprint[:8]}"


def _find(items: list[dict[str, Any]], field: str, value: str) -> Answer | None:
    matches = sorted((i for i in items if i.get(field) == value), key=lambda i: int(i["id"]))
    return (str(matches[0]["id"]), {}) if matches else None


def do_project(ctx: Context, step: PlannedStep, row: StepRow) -> Outcome:
    c, name = ctx.pipeline.character, remote_name(ctx, step)

    def send() -> Answer:
        answer = ctx.client.create_project(
            project_name=name, ip_type=c.type, ip_medium=c.medium, ip_name=c.name,
            ip_description=c.description,
            project_description=f"bria-run pipeline {ctx.pipeline.name}",
        )
        return str(answer["id"]), {}

    project_id, _ = ensure_remote(ctx.remote, row, "create_project", send,
                                  lambda: _find(ctx.client.list_projects(), "project_name", name))
    return project_id, {"name": name}


def do_dataset(ctx: Context, step: PlannedStep, row: StepRow) -> Outcome:
    project_id, name = ctx.ids["project"], remote_name(ctx, step)

    def send() -> Answer:
        return str(ctx.client.create_dataset(project_id=project_id, name=name)["id"]), {}

    dataset_id, _ = ensure_remote(ctx.remote, row, "create_dataset", send,
                                  lambda: _find(ctx.client.list_datasets(project_id), "name", name))
    return dataset_id, {"name": name}


def do_identity(ctx: Context, step: PlannedStep, row: StepRow) -> Outcome:
    """Ask Bria for the visual schema (fibo) or caption prefix (legacy), then PUT it on the
    draft dataset. Generating creates nothing remote, so an unknown outcome is simply redone."""
    c, dataset_id = ctx.pipeline.character, ctx.ids["dataset"]
    field = "caption_prefix" if ctx.pipeline.is_legacy else "visual_schema"
    text = c.identity.text
    if c.identity.mode == "auto":
        def send() -> Answer:
            with tempfile.TemporaryDirectory(prefix="bria-run-samples-") as tmp:
                samples = [_small_copy(p, Path(tmp)) for p in _samples(ctx)]
                if ctx.pipeline.is_legacy:
                    made = ctx.client.generate_prefix(samples, ip_type=c.type,
                                                      ip_medium=c.medium, ip_name=c.name)
                else:
                    made = ctx.client.generate_visual_schema(samples)
            return "-", {"text": made}

        _, data = ensure_remote(ctx.remote, row, f"generate_{field}", send)
        text = data["text"]
    try:
        ctx.client.update_dataset(dataset_id, **{field: text})
    except Conflict:
        # The dataset is no longer a draft: fine if it already carries this identity.
        if ctx.client.get_dataset(dataset_id).get(field) != text:
            raise
    return None, {field: text}


SAMPLE_SIDE = 1024  # enough to describe a character; keeps one request of 5-10 images small


def _small_copy(path: ImageRef, folder: Path) -> ImageRef:
    """The image itself when small or a URL (Bria fetches it); else a copy scaled to
    SAMPLE_SIDE (identity requests carry all samples in one body: ten 8 MB images would
    make it about 110 MB)."""
    if isinstance(path, str) or path.stat().st_size <= 1_500_000:
        return path
    from PIL import Image

    with Image.open(path) as image:
        image.thumbnail((SAMPLE_SIDE, SAMPLE_SIDE))
        target = folder / f"{path.stem}.png"
        image.save(target, "PNG")
    return target


def _samples(ctx: Context) -> list[ImageRef]:
    """The first N training images by content hash (a URL by its text): the same samples
    on every run."""
    images = ctx.pipeline.character.images
    ordered = sorted(images, key=lambda p: (image_key(p, ctx.hashes), str(p)))
    return ordered[: ctx.pipeline.character.identity.samples]


def do_upload(ctx: Context, step: PlannedStep, row: StepRow) -> Outcome:
    c, dataset_id = ctx.pipeline.character, ctx.ids["dataset"]
    name, path = step.inputs["image_name"], step.inputs["path"]

    def send() -> Answer:
        answer = ctx.client.upload_image(
            dataset_id, path if path.startswith("https://") else Path(path), image_name=name,
            increase_resolution=c.increase_resolution, content_moderation=c.content_moderation,
        )
        return str(answer["id"]), {}

    image_id, _ = ensure_remote(ctx.remote, row, "upload_image", send,
                                lambda: _find(ctx.client.list_images(dataset_id), "image_name", name))
    return image_id, {"image_name": name}


def do_complete(ctx: Context, step: PlannedStep, row: StepRow) -> Outcome:
    """PUT is idempotent: check, then set; a 409 means someone (us, earlier) already did."""
    dataset_id = ctx.ids["dataset"]
    if ctx.client.get_dataset(dataset_id).get("status") != "completed":
        check_dataset_holds_plan(ctx, "complete the dataset")
        try:
            ctx.client.update_dataset(dataset_id, status="completed")
        except Conflict:
            if ctx.client.get_dataset(dataset_id).get("status") != "completed":
                raise
    return None, {"status": "completed"}


def check_dataset_holds_plan(ctx: Context, action: str) -> None:
    """Never pay for a model of part of the character: the images Bria lists for the dataset
    must include every upload the plan declares (whatever the state says was sent)."""
    dataset_id = ctx.ids["dataset"]
    declared = [str(s.inputs["image_name"]) for s in ctx.plan.by_kind(StepKind.UPLOAD)]
    listed = {str(i.get("image_name")) for i in ctx.client.list_images(dataset_id)}
    missing = sorted(name for name in declared if name not in listed)
    if missing:
        raise DatasetIncomplete(dataset_id, missing, len(declared), action)


def do_model(ctx: Context, step: PlannedStep, row: StepRow) -> Outcome:
    t, project_id, name = ctx.pipeline.training, ctx.ids["project"], remote_name(ctx, step)

    def send() -> Answer:
        answer = ctx.client.create_model(
            name=name, dataset_id=ctx.ids["dataset"], training_mode=t.mode,
            training_version=t.version if ctx.pipeline.is_legacy else None,
        )
        return str(answer["id"]), {}

    model_id, _ = ensure_remote(ctx.remote, row, "create_model", send,
                                lambda: _find(ctx.client.list_models(project_id), "name", name))
    return model_id, {"name": name}


def do_train(ctx: Context, step: PlannedStep, row: StepRow) -> Outcome:
    """Start training once (409 or a non-Created status proves it started), then wait.

    Training is a remote resource to re-attach to: the wait can be cut by Ctrl-C or a crash
    at any time and the next run picks it up. bria-run never stops a training."""
    model_id = ctx.ids["model"]
    expert = ctx.pipeline.training.expert

    def started() -> Answer | None:
        status = ctx.client.get_model(model_id).get("status")
        return (str(model_id), {"status": status}) if status != "Created" else None

    def send() -> Answer:
        try:
            ctx.client.start_training(model_id, **(expert.as_params() if expert else {}))
        except Conflict:
            pass  # "training already started": exactly what we wanted
        return str(model_id), {}

    if started() is None:
        check_dataset_holds_plan(ctx, "start a training")
        ensure_remote(ctx.remote, row, "start_training", send, started)
        ctx.emit(EventKind.TRAINING, step.key, status="InProgress", model_id=model_id, log=True)
    return str(model_id), wait_for_training(ctx, row, model_id)


def wait_for_training(ctx: Context, row: StepRow, model_id: int) -> dict[str, Any]:
    every = ctx.options.poll_every or ctx.pipeline.training.poll_every
    began, last = ctx.clock(), None
    said: dict[str, str] = {}  # every explanation seen while polling; the latest wins
    while True:
        model = ctx.client.get_model(model_id)
        status = str(model.get("status"))
        said.update(failure_reasons(model))
        ctx.hooks.reach("training")
        if status != last:
            ctx.store.update_step(row.id, remote_id=str(model_id), outputs={"status": status})
            ctx.emit(EventKind.TRAINING, row.key, status=status, model_id=model_id, log=True,
                     elapsed=ctx.clock() - began)
            last = status
        if status in DONE_STATUSES:
            return {"status": status, "generation_prefix": model.get("generation_prefix")}
        if status in FAILED_STATUSES:
            raise TrainingFailed(model_id, status,
                                 tuple(f"{key}: {text}" for key, text in said.items()))
        if ctx.stop.is_set():
            return {"status": status, "detached": True}
        ctx.emit(EventKind.TRAINING, row.key, status=status, model_id=model_id,
                 elapsed=ctx.clock() - began)
        # Jitter spreads many runners' polls; polls count against the rate limit.
        ctx.wait(every * (0.9 + 0.2 * ctx.rand()))
