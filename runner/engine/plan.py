"""Planning: a pure function from the validated file and the recorded state to steps.

``plan`` reads no file and sends nothing: image hashes come in as data. Each planned
step has an action and a reason a user can read:

- ``create``   never done for these inputs
- ``done``     done for exactly these inputs: nothing to do
- ``resume``   started before (an intent or a training to re-attach to)
- ``changed``  done before for other inputs; the reason names which
- ``kept``     the model is stale, and ``--keep-model`` keeps the old one
- ``orphaned`` in the state but no longer in the file (outputs are kept)

A done scene whose output file is missing (or altered, with ``restore``) is planned ``resume``:
the file facts come in as data too (``files``).

A model whose inputs changed after training was paid for is *stale*: its training steps
plan as ``changed`` and ``Plan.blocked`` says why, so a run stops before spending training
credits unless ``--retrain`` or ``--keep-model`` is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from runner.engine.names import image_name
from runner.engine.pacing import EARLIER
from runner.engine.planned import Action, Plan, PlannedStep
from runner.pipeline.spec import Pipeline, Scene, image_key
from runner.state.fingerprint import canonical, derived_seed, fingerprint, fingerprint_parts
from runner.state.rows import FileState, Recorded, StepKind, StepRow, StepStatus

KEPT_FOR = "keep_model_for"  # meta: the training inputs (train fingerprint) --keep-model kept
# Where a file lives is not what it is (its sha256 is): moving the folder changes nothing.
LOCATIONS = frozenset({"path"})


def plan(
    pipeline: Pipeline,
    recorded: Recorded,
    hashes: Mapping[Path, str],
    *,
    retrain: bool = False,
    keep_model: bool = False,
    files: Mapping[int, FileState] | None = None,
    restore: bool = False,
) -> Plan:
    """The steps a run of ``pipeline`` would take, given what ``recorded`` says is done and,
    as data like ``hashes``, what each done scene's output file is now (``files``, by step id:
    missing ones are restored; altered ones only with ``restore``)."""
    planner = _Planner(pipeline, recorded, hashes, files or {}, restore)
    blocked: list[str]
    kept_for: str | None = None
    if pipeline.training.model_id is not None:
        model_ref: dict[str, Any] = {"model_id": pipeline.training.model_id}
        training: list[PlannedStep] = []
        source, blocked = "model_id", []
    else:
        training = planner.training_chain(retrain)
        model_ref, source, blocked = planner.model_decision(training, retrain, keep_model)
        if planner.sealed and not retrain and source == "train":
            why = (f"captions changed after the dataset was completed "
                   f"({', '.join(planner.sealed)}); a new dataset is needed")
            blocked = [*blocked, why]
        if source == "kept":
            kept_for = training[-1].fingerprint
            training = [planner.kept(s) for s in training]
    scenes = planner.scene_steps(model_ref)
    orphans = planner.orphans({s.key for s in training + scenes})
    gone = None if retrain else recorded.meta.get("gone") or None
    return Plan(pipeline, tuple(training + scenes + orphans), tuple(blocked), source,
                kept_for if source == "kept" else None, gone, job_seconds(recorded))


def job_seconds(recorded: Recorded, newest: int = EARLIER) -> tuple[float, ...]:
    """How long the newest generations this state saw finish took (``job_seconds`` in their
    outputs, oldest first); only the newest rows' outputs are decoded (a long history, or one
    from before durations were recorded, costs no more)."""
    done = sorted((r.id, r) for rows in recorded.steps.values() for r in rows
                  if r.kind == StepKind.SCENE and r.status == StepStatus.DONE)
    found: list[float] = []
    for _id, row in reversed(done[-4 * newest:]):
        took = row.outputs.get("job_seconds")
        if isinstance(took, (int, float)) and took > 0:
            found.append(float(took))
            if len(found) == newest:
                break
    return tuple(reversed(found))


class _Planner:
    def __init__(self, pipeline: Pipeline, recorded: Recorded, hashes: Mapping[Path, str],
                 files: Mapping[int, FileState], restore: bool):
        self.p, self.rec, self.hashes = pipeline, recorded, hashes
        self.sealed: list[str] = []  # caption steps changed after their dataset was completed
        self.files, self.restore = files, restore

    def step(self, key: str, kind: StepKind, inputs: dict[str, Any], fp: str | None = None,
             **extra: Any) -> PlannedStep:
        if fp is None:
            fp = fingerprint(kind, {k: v for k, v in inputs.items() if k not in LOCATIONS})
        action, reason, remote = self._compare(key, fp, inputs)
        same = self.rec.find(key, fp) if action == Action.DONE else None
        revived = same is not None and not same.is_current
        if revived and kind == StepKind.TRAIN:
            now = self.rec.current(key)
            instead = f" instead of model {now.remote_id}" if now and now.remote_id else ""
            reason = f"back to earlier inputs: model {remote}, trained for them, is used again" \
                     f"{instead}"
        return PlannedStep(key, kind, fp, action, reason, inputs, remote, revived=revived,
                           **extra)

    def _compare(self, key: str, fp: str, inputs: dict[str, Any]) -> tuple[Action, str, str | None]:
        same = self.rec.find(key, fp)
        if same is not None and same.status == StepStatus.DONE and not same.is_current \
                and key.startswith("scene/"):
            # Edited back (A -> B -> A): the file on disk is B's; fetch A's image again.
            return Action.CHANGED, "back to earlier inputs; its image is fetched again", None
        if same is not None and same.status == StepStatus.DONE:
            return self._kept_true(same)
        if same is not None:
            why = f"failed before: {same.error}" if same.status == StepStatus.FAILED else "interrupted"
            return Action.RESUME, f"{why}; continuing", same.remote_id
        current = self.rec.current(key)
        if current is not None:
            return Action.CHANGED, _what_changed(current, inputs), None
        return Action.CREATE, "new", None

    def _kept_true(self, done: StepRow) -> tuple[Action, str, str | None]:
        """A done step whose output file went missing (or, with --restore, was altered) is
        done again: its recorded result link is downloaded while valid, else the image is made
        again with its seed (so it is counted as a cost)."""
        state = self.files.get(done.id)
        how = "from its recorded link while valid, else generated again with its seed"
        if state == FileState.MISSING:
            return Action.RESUME, f"output missing; restored {how}", done.remote_id
        if state == FileState.ALTERED and self.restore:
            return (Action.RESUME, f"output altered; moved aside and restored {how}",
                    done.remote_id)
        if state == FileState.ALTERED:
            why = "done; its output was altered since (run --restore to restore it; the " \
                  "altered file is kept)"
            return Action.DONE, why, done.remote_id
        return Action.DONE, "done before with these inputs", done.remote_id

    # --- training chain -----------------------------------------------------------------

    def training_chain(self, retrain: bool) -> list[PlannedStep]:
        c, t = self.p.character, self.p.training
        project = self.step("project", StepKind.PROJECT, {
            "pipeline": self.p.name, "ip_type": c.type, "ip_medium": c.medium,
            "ip_name": c.name, "ip_description": c.description, **self._rebuilt("project", retrain),
        })
        dataset = self.dataset(project.fingerprint, retrain, reopen=False)
        uploads = self.uploads(dataset.fingerprint)
        captions, digest = self.captions(uploads)
        if self.sealed and retrain:
            # The dataset was completed with other captions: Bria refuses caption changes
            # on a completed dataset, so --retrain builds a new one (and everything after).
            dataset = self.dataset(project.fingerprint, retrain, reopen=True)
            uploads = self.uploads(dataset.fingerprint)
            captions, digest = self.captions(uploads)
        steps = [project, dataset]
        if c.identity.mode == "auto" or c.identity.text:
            steps.append(self.step("identity", StepKind.IDENTITY, {"dataset": dataset.fingerprint}))
        steps += uploads + captions
        steps.append(self.step("complete", StepKind.COMPLETE, {"dataset": dataset.fingerprint,
                                                               **digest}))
        bump = self._retry_failed(retrain) or self._is_gone("model", retrain)
        epoch = int(self.rec.meta.get("model_epoch", "0")) + (1 if bump else 0)
        model = self.step("model", StepKind.MODEL, {
            "dataset": dataset.fingerprint, "version": t.version, "mode": t.mode,
            "expert": t.expert.as_params() if t.expert else None, "epoch": epoch, **digest,
        })
        train = self.step("train", StepKind.TRAIN, {"model": model.fingerprint},
                          credits=self.p.prices.training)
        return steps + [model, self._paid_already(train)]

    def _paid_already(self, train: PlannedStep) -> PlannedStep:
        """Waiting for a training that was started (paid) costs nothing more; its time left
        counts from its real start."""
        row = self.rec.find(train.key, train.fingerprint)
        status = row.outputs.get("status") if row is not None else None
        if not train.is_work or row is None or not row.remote_id or status in (None, "Created"):
            return train
        began = row.outputs.get("training_started_at", row.started_at)
        if status in ("Failed", "Stopped"):
            return replace(train, credits=0.0)  # it fails again, for free, until --retrain
        return replace(train, credits=0.0,
                       began=float(began) if isinstance(began, (int, float)) else None,
                       reason=f"training of model {row.remote_id} {status}, paid already; "
                              "waiting for it")

    def dataset(self, project_fp: str, retrain: bool, *, reopen: bool) -> PlannedStep:
        c = self.p.character
        shas = sorted({image_key(image, self.hashes) for image in c.images})
        rebuilt = self._rebuilt("dataset", retrain)
        if reopen:
            rebuilt = {"rebuild": rebuilt.get("rebuild", 0) + 1}
        return self.step("dataset", StepKind.DATASET, {
            "project": project_fp, "legacy": self.p.is_legacy, "images": shas,
            "identity": [c.identity.mode, c.identity.text, c.identity.samples],
            "increase_resolution": c.increase_resolution,
            "content_moderation": c.content_moderation, **rebuilt,
        })

    def captions(self, uploads: list[PlannedStep]) -> tuple[list[PlannedStep], dict[str, str]]:
        """A step per image with its own caption, and the digest of them all (``{}`` without
        captions, so caption-less files keep their fingerprints). ``self.sealed`` names the
        changed ones whose dataset was already completed."""
        steps, pairs = [], []
        texts = {image_name(i, image_key(i, self.hashes)): t for i, t in self.p.character.captions}
        for upload in uploads:
            name = str(upload.inputs["image_name"])
            text = texts.get(name)
            if text is None and not self._had_caption(name):
                continue
            if text is not None:
                pairs.append([name, text])
            # caption None: the file no longer gives one; Bria writes its own again
            steps.append(self.step(f"caption/{name}", StepKind.CAPTION, {
                "upload": upload.fingerprint, "image_name": name, "caption": text}))
        digest = {"captions": fingerprint("captions", {"all": sorted(pairs)})} if pairs else {}
        closed = self.rec.current("complete")
        was = closed.outputs.get("inputs", {}) if closed is not None else {}
        if closed is not None and closed.status == StepStatus.DONE \
                and was.get("dataset") == (uploads[0].inputs["dataset"] if uploads else None) \
                and was.get("captions") != digest.get("captions"):
            self.sealed = [s.key for s in steps if s.action != Action.DONE] or ["a caption removed"]
        else:
            self.sealed = []
        return steps, digest

    def _had_caption(self, name: str) -> bool:
        old = self.rec.current(f"caption/{name}")
        return old is not None and old.outputs.get("inputs", {}).get("caption") is not None

    def uploads(self, dataset_fp: str) -> list[PlannedStep]:
        seen: set[str] = set()
        steps = []
        for path in self.p.character.images:
            sha = image_key(path, self.hashes)
            if sha in seen:
                continue  # identical content uploads once (validation warns about it)
            seen.add(sha)
            name = image_name(path, sha)
            steps.append(self.step(f"upload/{name}", StepKind.UPLOAD, {
                "dataset": dataset_fp, "sha256": sha, "path": str(path), "image_name": name,
            }))
        return steps

    def _is_gone(self, kind: str, retrain: bool) -> bool:
        """Bria no longer knows the recorded ``kind`` (a run found it so): --retrain makes a
        new one, and so everything after it."""
        return retrain and self.rec.meta.get("gone") == kind

    def _rebuilt(self, kind: str, retrain: bool) -> dict[str, int]:
        # Only a rebuilt project or dataset carries the key: every other state keeps its
        # fingerprints as they were.
        count = int(self.rec.meta.get(f"{kind}_rebuild", "0")) + self._is_gone(kind, retrain)
        return {"rebuild": count} if count else {}

    def _retry_failed(self, retrain: bool) -> bool:
        train = self.rec.current("train")
        return retrain and train is not None and train.outputs.get("status") in ("Failed", "Stopped")

    def model_decision(
        self, training: list[PlannedStep], retrain: bool, keep_model: bool
    ) -> tuple[dict[str, Any], str, list[str]]:
        train = training[-1]
        old = self.rec.current("train")
        if train.action != Action.CHANGED or old is None:
            return {"model": train.fingerprint}, "train", []
        reasons = [f"{s.key}: {s.reason}" for s in training if s.action == Action.CHANGED
                   and s.kind in (StepKind.PROJECT, StepKind.DATASET, StepKind.MODEL)]
        if keep_model:
            return {"model": old.fingerprint}, "kept", []
        if retrain:
            return {"model": train.fingerprint}, "train", []
        if self.rec.meta.get(KEPT_FOR) == train.fingerprint:
            # --keep-model was chosen for exactly these training inputs: remembered until
            # they change again.
            return {"model": old.fingerprint}, "kept", []
        return {"model": train.fingerprint}, "train", reasons or ["training inputs changed"]

    def kept(self, step: PlannedStep) -> PlannedStep:
        old = self.rec.current(step.key)
        if step.action == Action.CREATE:
            # e.g. a new training image: the old model never saw it, and its dataset is closed
            return replace(step, action=Action.KEPT, reason="not in the old model (--keep-model)")
        if step.action != Action.CHANGED or old is None:
            return step
        return PlannedStep(step.key, step.kind, old.fingerprint, Action.KEPT,
                           "inputs changed; --keep-model keeps the old model", old.outputs.get(
                               "inputs", {}), old.remote_id)

    # --- scenes -------------------------------------------------------------------------

    def scene_steps(self, model_ref: dict[str, Any]) -> list[PlannedStep]:
        steps = []
        model_text = canonical(model_ref)
        for scene in self.p.scenes:
            params = self._scene_inputs(scene)
            params_text = canonical(params)
            for n in range(1, scene.variations + 1):
                seed = (scene.seed + n - 1) if scene.seed is not None else derived_seed(
                    self.p.name, scene.name, n)
                inputs = {**params, "model": model_ref, "variation": n, "seed": seed}
                fp = fingerprint_parts("scene", params_text, model_text, f"{n}:{seed}")
                steps.append(self.step(
                    f"scene/{scene.name}/{n}", StepKind.SCENE, inputs, fp, scene=scene.name,
                    variation=n, seed=seed, credits=self.p.prices.image,
                ))
        return steps

    def _scene_inputs(self, scene: Scene) -> dict[str, Any]:
        return {
            "prompt": scene.prompt,
            "reference": image_key(scene.reference, self.hashes) if scene.reference else None,
            "structure_strength": scene.structure_strength,
            "aspect_ratio": scene.aspect_ratio,
            "negative_prompt": scene.negative_prompt,
            "model_influence": scene.model_influence,
            "guidance_scale": scene.guidance_scale,
            "steps_num": scene.steps_num,
            "guidance": [[g.method, image_key(g.image, self.hashes), g.scale]
                         for g in scene.guidance],
        }

    def orphans(self, planned: set[str]) -> list[PlannedStep]:
        steps = []
        for key, rows in self.rec.steps.items():
            current = [r for r in rows if r.is_current]
            if key in planned or not current or not key.startswith("scene/"):
                continue
            row = current[-1]
            steps.append(PlannedStep(key, row.kind, row.fingerprint, Action.ORPHANED,
                                     "no longer in the file; its outputs are kept",
                                     remote_id=row.remote_id))
        return steps


def _what_changed(old: StepRow, inputs: dict[str, Any]) -> str:
    before = old.outputs.get("inputs")
    if not isinstance(before, dict):
        return "inputs changed"
    names = sorted(k for k in set(before) | set(inputs) if before.get(k) != inputs.get(k))
    upstream = {"project", "dataset", "model"}
    direct = [n for n in names if n not in upstream]
    if direct:
        return "changed: " + ", ".join(direct)
    return "changed upstream: " + ", ".join(names) if names else "inputs changed"
