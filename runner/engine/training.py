"""The training chain, one small function per step kind.

Each function takes the context, the planned step and its state row, and returns the
remote id and the outputs to record. Every POST goes through ``ensure_remote`` with a
reconciler that finds the resource again by its deterministic name.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any

from runner.bria.errors import Conflict
from runner.bria.failures import failure_reasons
from runner.engine.context import Context, Outcome
from runner.engine.pacing import training_wait
from runner.engine.planned import PlannedStep
from runner.engine.remote import Answer, ensure_remote
from runner.errors import CaptionSealed, DatasetIncomplete, TrainingFailed
from runner.events import EventKind
from runner.pipeline.spec import ImageRef, image_key
from runner.state.rows import IntentOutcome, StepKind, StepRow, StepStatus

DONE_STATUSES = ("Completed",)
FAILED_STATUSES = ("Failed", "Stopped")


def remote_name(ctx: Context, step: PlannedStep) -> str:
    """Deterministic remote names (pipeline name + short fingerprint) make reconciling possible."""
    return f"{ctx.pipeline.name}-{step.fingerprint[:8]}"


def _find(items: list[dict[str, Any]], field: str, value: str) -> Answer | None:
    matches = sorted((i for i in items if i.get(field) == value), key=lambda i: int(i["id"]))
    return (str(matches[0]["id"]), {}) if matches else None


def _create_once(ctx: Context, row: StepRow, op: str, what: str, send: Callable[[], Answer],
                 find: Callable[[], Answer | None], *, parent: str | None) -> Answer:
    """``ensure_remote``, but when this state never asked for it (a new machine, a lost or
    deleted state, another folder), first look the deterministic name up at Bria and adopt
    what is there: a lost state never pays twice. Skipped when ``parent`` was created in
    this very run (nothing can exist under it yet)."""
    asked = bool(ctx.store.intents_of(row.id))
    if not asked and (parent is None or parent not in ctx.created):
        found = find()
        if found is not None:
            adopt(ctx, row, op, f"adopted {what} {found[0]} found at Bria by name", found[0])
            return found
    answer = ensure_remote(ctx.remote, row, op, send, find)
    if not asked:
        ctx.created.add(row.kind)
    return answer


def adopt(ctx: Context, row: StepRow, op: str, message: str, remote_id: str) -> None:
    """Record a resource found at Bria as this step's, as an intent that was never sent."""
    intent = ctx.store.record_intent(row.id, op)
    ctx.store.resolve_intent(intent, IntentOutcome.ADOPTED, remote_id=remote_id)
    ctx.adopted.add(row.kind)
    ctx.emit(EventKind.ADOPTED, row.key, op=op, remote_id=remote_id, message=message, log=True)


def do_project(ctx: Context, step: PlannedStep, row: StepRow) -> Outcome:
    c, name = ctx.pipeline.character, remote_name(ctx, step)

    def send() -> Answer:
        identity_early(ctx)  # a new project: nothing at Bria can carry the identity yet
        answer = ctx.client.create_project(
            project_name=name, ip_type=c.type, ip_medium=c.medium, ip_name=c.name,
            ip_description=c.description,
            project_description=f"bria-run pipeline {ctx.pipeline.name}",
        )
        return str(answer["id"]), {}

    project_id, _ = _create_once(
        ctx, row, "create_project", "project", send,
        lambda: _find(ctx.client.list_projects(), "project_name", name), parent=None)
    return project_id, {"name": name}


def do_dataset(ctx: Context, step: PlannedStep, row: StepRow) -> Outcome:
    project_id, name = ctx.ids["project"], remote_name(ctx, step)

    def send() -> Answer:
        return str(ctx.client.create_dataset(project_id=project_id, name=name)["id"]), {}

    dataset_id, _ = _create_once(
        ctx, row, "create_dataset", "dataset", send,
        lambda: _find(ctx.client.list_datasets(project_id), "name", name), parent="project")
    return dataset_id, {"name": name}


def do_identity(ctx: Context, step: PlannedStep, row: StepRow) -> Outcome:
    """Ask Bria for the visual schema (fibo) or caption prefix (legacy), then PUT it on the
    draft dataset. Generating creates nothing remote, so an unknown outcome is simply redone."""
    c, dataset_id = ctx.pipeline.character, ctx.ids["dataset"]
    field = "caption_prefix" if ctx.pipeline.is_legacy else "visual_schema"
    text = c.identity.text
    if "dataset" in ctx.adopted:
        # Found at Bria by name: a completed dataset carries its identity already (asking
        # for a new one would differ, and a completed dataset cannot change).
        found = ctx.client.get_dataset(dataset_id)
        if found.get("status") == "completed" and found.get(field):
            return None, {field: found[field]}
    if c.identity.mode == "auto":
        def send() -> Answer:
            early, ctx.early_identity = ctx.early_identity, None
            # Sent while the project and dataset were made; its failure is this send's.
            return early.result() if early is not None else _generate_identity(ctx)

        _, data = ensure_remote(ctx.remote, row, f"generate_{field}", send, is_paid=False)
        text = data["text"]
    try:
        ctx.client.update_dataset(dataset_id, **{field: text})
    except Conflict:
        # The dataset is no longer a draft: fine if it already carries this identity.
        if ctx.client.get_dataset(dataset_id).get(field) != text:
            raise
    return None, {field: text}


def _generate_identity(ctx: Context) -> Answer:
    c = ctx.pipeline.character
    with tempfile.TemporaryDirectory(prefix="bria-run-samples-") as tmp:
        samples = [_small_copy(p, Path(tmp)) for p in _samples(ctx)]
        if ctx.pipeline.is_legacy:
            made = ctx.client.generate_prefix(samples, ip_type=c.type, ip_medium=c.medium,
                                              ip_name=c.name)
        else:
            made = ctx.client.generate_visual_schema(samples)
    return "-", {"text": made}


def identity_early(ctx: Context) -> None:
    """Start generating the identity now, beside the project's and the dataset's creation:
    it needs only the sample images, and Bria's answer takes longer than either. Only for a
    new project (no dataset found at Bria can make it unnecessary); generating creates
    nothing remote, so an answer a stopped run never uses costs nothing."""
    wanted = any(s.is_work for s in ctx.plan.by_kind(StepKind.IDENTITY))
    if not wanted or ctx.pipeline.character.identity.mode != "auto" or ctx.early_identity:
        return
    future: Future[Answer] = Future()

    def generate() -> None:
        try:
            future.set_result(_generate_identity(ctx))
        except Exception as exc:  # noqa: BLE001 - handed to the identity step, raised there
            future.set_exception(exc)

    ctx.early_identity = future
    threading.Thread(target=generate, name="bria-run-identity", daemon=True).start()


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

    def find() -> Answer | None:
        return _find(ctx.client.list_images(dataset_id), "image_name", name)

    if "dataset" in ctx.adopted and not ctx.store.intents_of(row.id):
        # An adopted dataset may already hold this image (and be closed to new ones).
        found = _find(_listing(ctx, dataset_id), "image_name", name)
        if found is not None:
            ctx.store.resolve_intent(ctx.store.record_intent(row.id, "upload_image"),
                                     IntentOutcome.ADOPTED, remote_id=found[0])
            return found[0], {"image_name": name, "adopted": True}
    image_id, _ = ensure_remote(ctx.remote, row, "upload_image", send, find)
    return image_id, {"image_name": name}


_LISTING = threading.Lock()


def _listing(ctx: Context, dataset_id: int) -> list[dict[str, Any]]:
    """The images of an adopted dataset, asked once for all its uploads."""
    with _LISTING:
        key = f"images/{dataset_id}"
        if key not in ctx.listings:
            ctx.listings[key] = ctx.client.list_images(dataset_id)
        return ctx.listings[key]


def do_caption(ctx: Context, step: PlannedStep, row: StepRow) -> Outcome:
    """Set one uploaded image's own caption with Bria's image-update endpoint (a PUT: safe to
    repeat). Only this image's caption is sent; a completed dataset refuses it (409)."""
    dataset_id, name = ctx.ids["dataset"], str(step.inputs["image_name"])
    text = step.inputs["caption"]
    found = _find(ctx.client.list_images(dataset_id), "image_name", name)
    if found is None:
        raise DatasetIncomplete(dataset_id, [name], 1, "set its caption")
    try:
        ctx.client.update_image_caption(dataset_id, int(found[0]), text)
    except Conflict as exc:
        raise CaptionSealed(dataset_id, name) from exc
    return found[0], {"image_name": name, "caption": text}


def do_complete(ctx: Context, step: PlannedStep, row: StepRow) -> Outcome:
    """PUT is idempotent: check, then set; a 409 means someone (us, earlier) already did.
    A dataset this run created is a draft: no need to ask."""
    dataset_id = ctx.ids["dataset"]
    if "dataset" in ctx.created or ctx.client.get_dataset(dataset_id).get("status") != "completed":
        check_dataset_holds_plan(ctx, "complete the dataset")
        try:
            ctx.client.update_dataset(dataset_id, status="completed")
        except Conflict:
            if ctx.client.get_dataset(dataset_id).get("status") != "completed":
                raise
        ctx.verified.add(dataset_id)
    return None, {"status": "completed"}


def check_dataset_holds_plan(ctx: Context, action: str) -> None:
    """Never pay for a model of part of the character: the images Bria lists for the dataset
    must include every upload the plan declares (whatever the state says was sent). Asked
    once a run: a dataset this run checked and then completed can no longer change."""
    dataset_id = ctx.ids["dataset"]
    if dataset_id in ctx.verified:
        return
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

    model_id, _ = _create_once(
        ctx, row, "create_model", "model", send,
        lambda: _find(ctx.client.list_models(project_id), "name", name), parent="dataset")
    return model_id, {"name": name}


def do_train(ctx: Context, step: PlannedStep, row: StepRow) -> Outcome:
    """Start training once (409 or a non-Created status proves it started), then wait.

    Training is a remote resource to re-attach to: the wait can be cut by Ctrl-C or a crash
    at any time and the next run picks it up. bria-run never stops a training."""
    model_id = ctx.ids["model"]
    expert = ctx.pipeline.training.expert

    seen: dict[str, Any] = {}

    def started() -> Answer | None:
        seen.update(ctx.client.get_model(model_id))
        status = seen.get("status")
        return (str(model_id), {"status": status}) if status != "Created" else None

    def send() -> Answer:
        try:
            ctx.client.start_training(model_id, **(expert.as_params() if expert else {}))
        except Conflict:
            pass  # "training already started": exactly what we wanted
        return str(model_id), {}

    asked = bool(ctx.store.intents_of(row.id))
    # A model this run created has not started training (nobody else knows its id yet).
    is_new = not asked and "model" in ctx.created
    if is_new or started() is None:
        check_dataset_holds_plan(ctx, "start a training")
        ensure_remote(ctx.remote, row, "start_training", send, started)
        ctx.emit(EventKind.TRAINING, step.key, status="InProgress", model_id=model_id, log=True)
        since = ctx.wall()
    else:
        if not asked:
            adopt(ctx, row, "start_training", f"adopted the training of model {model_id} "
                  f"found at Bria ({seen.get('status')}): nothing is paid again", str(model_id))
        since = training_start(ctx, row, seen)
    return str(model_id), wait_for_training(ctx, row, model_id, since)


def training_start(ctx: Context, row: StepRow, model: dict[str, Any]) -> float:
    """When the training really began: as recorded, else Bria's ``updated_at`` of a model in
    training (it is set when training starts), else now."""
    recorded = ctx.store.step(row.id).outputs.get("training_started_at")
    if isinstance(recorded, (int, float)):
        return float(recorded)
    stamp = model.get("updated_at")
    if model.get("status") == "InProgress" and isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp).timestamp()
        except ValueError:
            pass
    return ctx.wall()


def wait_for_training(ctx: Context, row: StepRow, model_id: int, since: float) -> dict[str, Any]:
    """Poll until the training ends; the elapsed time counts from its real start, so it
    survives a resume. Every ``poll_every`` (from one look's sending to the next), and sooner
    near the end that earlier trainings recorded in this state predict
    (``pacing.training_wait``)."""
    every = ctx.options.poll_every or ctx.pipeline.training.poll_every
    earlier = earlier_trainings(ctx, row.id)
    began, last = ctx.clock() - max(0.0, ctx.wall() - since), None
    running_at: float | None = None  # the last look that saw it in progress (since its start)
    said: dict[str, str] = {}  # every explanation seen while polling; the latest wins
    while True:
        asked = ctx.clock()  # the wait below counts from here: looks ``wait`` apart
        model = ctx.client.get_model(model_id)
        status, looked = str(model.get("status")), ctx.wall() - since
        said.update(failure_reasons(model))
        ctx.hooks.reach("training")
        if status != last:
            ctx.store.update_step(row.id, remote_id=str(model_id),
                                  outputs={"status": status, "training_started_at": since})
            ctx.emit(EventKind.TRAINING, row.key, status=status, model_id=model_id, log=True,
                     elapsed=ctx.clock() - began)
            last = status
        if status in DONE_STATUSES:
            # The middle of the last look in progress and this one: what later runs expect.
            took = looked if running_at is None else (running_at + looked) / 2
            return {"status": status, "generation_prefix": model.get("generation_prefix"),
                    "training_started_at": since, "trained_seconds": took}
        if status in FAILED_STATUSES:
            raise TrainingFailed(model_id, status,
                                 tuple(f"{key}: {text}" for key, text in said.items()))
        if ctx.stop.is_set():
            return {"status": status, "detached": True}
        ctx.emit(EventKind.TRAINING, row.key, status=status, model_id=model_id,
                 elapsed=ctx.clock() - began)
        running_at = looked
        wait = training_wait(looked, earlier, every, least=ctx.options.job_poll)
        # Jitter spreads many runners' polls; polls count against the rate limit.
        ctx.wait(max(0.0, wait * (0.9 + 0.2 * ctx.rand()) - (ctx.clock() - asked)))


def earlier_trainings(ctx: Context, this_row: int) -> list[float]:
    """How long the trainings this state saw finish took (seconds), the newest 20."""
    found: list[float] = []
    for rows in ctx.store.load(with_artifacts=False).steps.values():
        for r in rows:
            if r.kind != StepKind.TRAIN or r.status != StepStatus.DONE or r.id == this_row:
                continue
            took = r.outputs.get("trained_seconds")
            if took is None and r.started_at is not None and r.finished_at is not None:
                took = r.finished_at - r.started_at  # a state from before it was recorded
            if isinstance(took, (int, float)) and took > 0:
                found.append(float(took))
    return found[-20:]
