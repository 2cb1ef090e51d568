"""One scene variation: submit (recording the request id), wait, download atomically.

fibo: a scene reference first becomes a structured prompt (an async job), then the
tailored model generates from it. Legacy (light/max): reimagine for a reference,
text-to-image otherwise, with ``sync: false`` (the URLs come back at once and the files
appear later). A result link that expired before download is regenerated with the same
seed, so the image is the same one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from runner.bria.errors import JobLost, JobTimeout, ResultExpired
from runner.bria.jobs import poll_until_done
from runner.engine.context import Context, Outcome
from runner.engine.outputs import (
    file_sha256,
    iso,
    move_aside,
    output_path,
    read_record,
    write_atomically,
    write_record,
)
from runner.engine.planned import PlannedStep
from runner.engine.remote import Answer, ensure_remote, supersede
from runner.errors import Interrupted
from runner.events import EventKind
from runner.pipeline.spec import Scene
from runner.state.rows import ArtifactRow, StepRow

if TYPE_CHECKING:  # the status type comes with httpx, loaded only once a run sends
    from runner.bria.answers import JobStatus
    from runner.engine.pacing import JobPacer

ATTEMPTS = 3  # lost jobs / expired links before the scene is reported failed


def do_scene(ctx: Context, step: PlannedStep, row: StepRow) -> Outcome:
    scene = ctx.pipeline.scene(step.scene or "")
    known = _recognised(ctx, step)
    if known is not None:
        return known
    attempt = 1
    while True:
        try:
            url, seed, job_seconds = _result_url(ctx, step, row, scene)
            ctx.emit(EventKind.SCENE, step.key, state="downloading")
            sha, path, size = _download(ctx, step, row, url)
        except JobTimeout as exc:
            raise _given_up(ctx, row, exc) from None
        except (JobLost, ResultExpired) as exc:
            if attempt == ATTEMPTS:
                raise
            attempt += 1
            ctx.emit(EventKind.SCENE, step.key, state="regenerating", reason=str(exc), log=True)
            supersede(ctx.remote, row, "generate")
            continue
        # The engine records the file as an artifact together with the step's completion.
        source = url.split("?", 1)[0]
        model_id = ctx.ids.get("model")
        write_record(path, {"step": step.key, "fingerprint": step.fingerprint, "sha256": sha,
                            "seed": seed, "prompt": scene.prompt, "scene": scene.name,
                            "variation": step.variation or 1, "model_id": model_id,
                            "source": source, "created_at": iso(time.time())})
        outputs = {"path": str(path), "sha256": sha, "seed": seed, "bytes": size,
                   "model_id": model_id}
        if job_seconds is not None:  # what the next run's pacer starts from
            outputs["job_seconds"] = round(job_seconds, 3)
        return source, outputs


def _recognised(ctx: Context, step: PlannedStep) -> Outcome | None:
    """The image already in the outputs folder, when its record says this very step (same
    fingerprint) made it and the file still has the recorded sha256: a state that was lost
    or deleted recognises its own outputs and pays nothing for them."""
    path = output_path(ctx.pipeline.outputs, step.scene or "", step.variation or 1)
    record = read_record(path)
    if record.get("fingerprint") != step.fingerprint or file_sha256(path) != record.get("sha256"):
        return None
    ctx.emit(EventKind.SCENE, step.key, state="recognised", path=str(path), log=True)
    return record.get("source"), {"path": str(path), "sha256": record["sha256"],
                                  "seed": record.get("seed"), "bytes": path.stat().st_size,
                                  "model_id": record.get("model_id"), "recognised": True}


def _result_url(ctx: Context, step: PlannedStep, row: StepRow,
                scene: Scene) -> tuple[str, int, float | None]:
    """The result's link, its seed and (v2) how long the job took as the pacer learned it."""
    seed = step.seed if step.seed is not None else 0
    if ctx.pipeline.is_legacy:
        url, _ = ensure_remote(ctx.remote, row, "generate", lambda: _legacy_submit(ctx, scene, seed))
        ctx.emit(EventKind.SCENE, step.key, state="generating", model_id=ctx.ids.get("model"))
        _wait_url(ctx, url)
        return url, seed, None
    structured = _structured_prompt(ctx, step, row, scene) if scene.reference else None
    request_id, _ = ensure_remote(
        ctx.remote, row, "generate", lambda: _fibo_submit(ctx, scene, seed, structured)
    )
    ctx.emit(EventKind.SCENE, step.key, state="generating", request_id=request_id,
             model_id=ctx.ids.get("model"))
    result, took = _wait_job(ctx, request_id, ctx.pacer)
    return str(result["image_url"]), int(result.get("seed", seed)), took


def _structured_prompt(ctx: Context, step: PlannedStep, row: StepRow, scene: Scene) -> str:
    """The scene reference as a structured prompt; kept in the step so a resume reuses it."""
    assert scene.reference is not None
    reference = scene.reference
    known = ctx.store.step(row.id).outputs.get("structured_prompt")
    if known:
        return str(known)
    attempt = 1
    while True:
        request_id, _ = ensure_remote(ctx.remote, row, "structured_prompt", lambda: (
            ctx.client.generate_structured_prompt(images=[reference], prompt=scene.prompt)
            .request_id, {}))
        try:
            result, _took = _wait_job(ctx, request_id, ctx.prompt_pacer)
        except JobLost:
            if attempt == ATTEMPTS:
                raise
            attempt += 1
            supersede(ctx.remote, row, "structured_prompt")
            continue
        text = str(result["structured_prompt"])
        ctx.store.update_step(row.id, outputs={"structured_prompt": text})
        return text


def _wait_job(ctx: Context, request_id: str, pacer: JobPacer) -> tuple[dict[str, Any], float]:
    """Poll a v2 job until it ends, each poll when the job is expected to be done (pacing);
    a Ctrl-C leaves it running (its id is recorded). Its result, and how long it took as the
    pacer learned it."""
    began = ctx.clock()
    schedule = pacer.start(ctx.stop)
    took: float | None = None
    sent = began

    def poll() -> JobStatus:
        nonlocal sent
        sent = ctx.clock()
        return ctx.client.get_status(request_id)

    def interval() -> float:
        now = ctx.clock()
        return schedule.after_miss(now - began, took=now - sent)

    try:
        ctx.wait(schedule.first(ctx.clock() - began))
        result = poll_until_done(poll, request_id, pause=ctx.wait, interval=interval,
                                 should_stop=ctx.stop.is_set, clock=ctx.clock,
                                 timeout=ctx.options.job_timeout - (ctx.clock() - began))
        if result is None:
            raise Interrupted(ctx.options.resume_command)
        took = ctx.clock() - began
        return result, schedule.estimate(took)
    finally:
        pacer.finish(schedule, took)


def _wait_url(ctx: Context, url: str) -> None:
    """Legacy: poll the result link until it serves, for at most the job timeout; a Ctrl-C
    leaves it (its URL is recorded). Polled in short spans, so a Ctrl-C is seen soon."""
    deadline = ctx.clock() + ctx.options.job_timeout
    while True:
        left = deadline - ctx.clock()
        try:
            ctx.client.wait_url(url, poll_every=ctx.options.job_poll,
                                timeout=min(left, ctx.options.job_poll * 10))
            return
        except JobTimeout:
            if ctx.stop.is_set():
                raise Interrupted(ctx.options.resume_command) from None
            if ctx.clock() + ctx.options.job_poll > deadline:
                raise JobTimeout(url.split("?", 1)[0], "result not served in time") from None


def _given_up(ctx: Context, row: StepRow, exc: JobTimeout) -> JobTimeout:
    """A job past ``--job-timeout`` fails its scene; the others go on. Its recorded request
    is forgotten, so the next run sends it once more (a structured prompt already made is
    kept in the step and reused)."""
    for op in ("generate", "structured_prompt"):
        supersede(ctx.remote, row, op)
    limit = ctx.options.job_timeout
    shown = next((f"{limit / unit:g}{name}" for name, unit in (("h", 3600), ("m", 60))
                  if limit >= unit and limit % unit == 0), f"{limit:g}s")
    return JobTimeout(exc.request_id, f"still in progress after --job-timeout {shown}; the "
                                      "next run sends it once more")


def _fibo_submit(ctx: Context, scene: Scene, seed: int, structured: str | None) -> Answer:
    job = ctx.client.generate_tailored(
        tailored_model_id=ctx.ids["model"], prompt=scene.prompt, structured_prompt=structured,
        negative_prompt=scene.negative_prompt, seed=seed, aspect_ratio=scene.aspect_ratio,
        tailored_model_influence=scene.model_influence, guidance_scale=scene.guidance_scale,
        steps_num=scene.steps_num,
    )
    return job.request_id, {"status_url": job.status_url}


def _legacy_submit(ctx: Context, scene: Scene, seed: int) -> Answer:
    model_id = ctx.ids["model"]
    if scene.reference is not None:
        results = ctx.client.reimagine(
            prompt=scene.prompt, structure_image=scene.reference,
            structure_ref_influence=scene.structure_strength, tailored_model_id=model_id,
            tailored_model_influence=scene.model_influence, num_results=1, seed=seed,
        )
    else:
        results = ctx.client.text_to_image_tailored(
            model_id, prompt=scene.prompt, num_results=1, aspect_ratio=scene.aspect_ratio,
            seed=seed, model_influence=scene.model_influence,
            negative_prompt=scene.negative_prompt,
            guidance=[(g.method, g.image, g.scale) for g in scene.guidance],
        )
    urls = [u for r in results for u in r.get("urls", [])]
    return urls[0], {"urls": urls, "seed": results[0].get("seed", seed)}


def _download(ctx: Context, step: PlannedStep, row: StepRow, url: str) -> tuple[str, Path, int]:
    path = output_path(ctx.pipeline.outputs, step.scene or "", step.variation or 1)
    _make_room(ctx, row, path)

    def fill(handle: BinaryIO) -> str:
        return ctx.client.download(url, _CrashingWriter(handle, ctx))  # type: ignore[arg-type]

    sha = write_atomically(path, fill)
    return sha, path, path.stat().st_size


def _make_room(ctx: Context, row: StepRow, path: Path) -> None:
    """Earlier outputs are never overwritten silently: move them under previous/."""
    existing = file_sha256(path)
    if existing is None:
        return
    recorded = [a for a in ctx.store.artifacts_at(str(path)) if a.is_current]
    if any(a.step_id == row.id and a.sha256 == existing for a in recorded):
        return  # our own earlier download of this very step: same inputs, same seed
    owner = ctx.store.step(recorded[-1].step_id) if recorded else None
    if recorded and recorded[-1].sha256 != existing:
        # Altered since it was recorded: kept aside as what it is now, not as the recorded
        # image (whose row is retired when the restored file is recorded).
        target = move_aside(path, f"altered-{existing[:8]}", {
            "sha256": existing, "altered_from": recorded[-1].sha256,
            "scene": recorded[-1].scene, "variation": recorded[-1].variation})
    else:
        own = read_record(path)
        tag = owner.fingerprint[:8] if owner else (
            str(own["fingerprint"])[:8]
            if own.get("sha256") == existing and own.get("fingerprint")
            else f"unrecorded-{existing[:8]}")
        about = _about(owner, recorded[-1] if recorded else None, existing)
        if owner is None and own.get("sha256") == existing:
            about = {**own, **about}  # the state does not know it; its own record does
        target = move_aside(path, tag, about)
        if target is not None:
            ctx.store.move_artifact(str(path), str(target))
    if target is not None:
        ctx.emit(EventKind.MOVED, row.key, src=str(path), dst=str(target), log=True)


def _about(owner: StepRow | None, artifact: ArtifactRow | None, sha256: str) -> dict[str, Any]:
    """The sidecar of an image moved aside: what made it, for the gallery."""
    about: dict[str, Any] = {"sha256": sha256}
    if owner is not None and artifact is not None:
        inputs = owner.outputs.get("inputs", {})
        about.update(scene=artifact.scene, variation=artifact.variation, seed=artifact.seed,
                     prompt=inputs.get("prompt"), step=owner.key,
                     model_id=owner.outputs.get("model_id"),
                     fingerprint=owner.fingerprint, created_at=iso(owner.finished_at))
    return about


class _CrashingWriter:
    """Passes writes through; lets the crash suite kill the process mid-download."""

    def __init__(self, handle: BinaryIO, ctx: Context) -> None:
        self.handle, self.ctx, self.written = handle, ctx, 0

    def write(self, data: bytes) -> int:
        n = self.handle.write(data)
        self.written += n
        self.ctx.hooks.reach("download")
        return n

    # A dropped transfer is retried from the start: let the client rewind.
    def seekable(self) -> bool:
        return self.handle.seekable()

    def tell(self) -> int:
        return self.handle.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.handle.seek(offset, whence)

    def truncate(self, size: int | None = None) -> int:
        return self.handle.truncate(size)
