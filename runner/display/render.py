"""What `bria-run plan`, `status` and `outputs` print: data first (for --json), then text."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from runner.engine.outputs import output_facts
from runner.engine.planned import TRAINING_KINDS, Plan, PlannedStep
from runner.state.rows import ArtifactRow, FileState, Recorded

SYMBOLS = {"create": "+", "changed": "~", "resume": ">", "kept": "=",
           "done": " ", "orphaned": "-"}


def plan_data(the_plan: Plan) -> dict[str, Any]:
    return {
        "pipeline": the_plan.pipeline.name,
        "has_work": the_plan.has_work,
        "blocked": list(the_plan.blocked),
        "model_source": the_plan.model_source,
        "gone": the_plan.gone,
        "estimate": {"credits": the_plan.credits, "seconds": the_plan.estimate_seconds()},
        "steps": [
            {"key": s.key, "kind": s.kind, "action": s.action, "reason": s.reason,
             "fingerprint": s.fingerprint[:12], "remote_id": s.remote_id, "credits": s.credits
             if s.is_work else 0}
            for s in the_plan.steps
        ],
    }


def plan_text(the_plan: Plan, *, verbose: bool = False) -> str:
    """A Terraform-like plan: one line per step that does something, then the totals."""
    lines = [f"Plan for {the_plan.pipeline.name} ({the_plan.pipeline.path.name}):"]
    uploads = [s for s in the_plan.steps if s.kind == "upload"]
    todo = [u for u in uploads if u.is_work]
    for step in the_plan.steps:
        if step.kind == "upload" and not verbose:
            if todo and step is todo[0]:  # one summary line instead of one per image
                lines.append(f"  {_symbol(the_plan, step)} upload  {len(todo)} of "
                             f"{len(uploads)} training images")
        elif step.action != "done" or verbose or "altered" in step.reason:
            reason = step.reason if step.reason.startswith(step.action) \
                else f"{step.action}: {step.reason}"
            lines.append(f"  {_symbol(the_plan, step)} {step.key:<28} {reason}")
    work = [s for s in the_plan.steps if s.is_work]
    done = sum(1 for s in the_plan.steps if s.action == "done")
    if the_plan.blocked:
        lines.append("Blocked: the model is stale (" + "; ".join(the_plan.blocked) + ").")
        lines.append("  Run with --retrain to train again, or --keep-model to use the old model.")
    if the_plan.gone:
        lines.append(f"The last run found the {the_plan.gone} gone at Bria: run with --retrain "
                     f"to make a new one and everything after it.")
    if not work and not the_plan.blocked:
        lines.append("Nothing to do: every step is done.")
    else:
        prefix = "With --retrain: " if the_plan.blocked else ""
        lines.append(f"{prefix}{len(work)} to run, {done} done. Estimated cost: about "
                     f"{the_plan.credits:g} credits; time: about "
                     f"{_duration(the_plan.estimate_seconds())}.")
    return "\n".join(lines)


def _symbol(the_plan: Plan, step: PlannedStep) -> str:
    """``!`` marks the training work a stale model blocks; the rest by action."""
    if the_plan.blocked and step.is_work and step.kind in TRAINING_KINDS:
        return "!"
    return SYMBOLS.get(step.action, "?")


def status_data(the_plan: Plan, recorded: Recorded, location: str,
                lock: dict[str, Any] | None) -> dict[str, Any]:
    scenes, training = [], []
    for step in the_plan.steps:
        row = recorded.find(step.key, step.fingerprint) or recorded.current(step.key)
        entry = {"key": step.key, "action": step.action,
                 "state": row.status if row else "pending",
                 "remote_id": row.remote_id if row else None}
        if step.kind == "scene":
            scenes.append({**entry, "scene": step.scene, "variation": step.variation,
                           "output": (row.outputs.get("path") if row else None)})
        else:
            training.append(entry)
    return {
        "pipeline": the_plan.pipeline.name,
        "state": location,
        "model": _model(recorded, the_plan),
        "training_steps": training,
        "scenes": scenes,
        "credits_spent": credits_spent(recorded, the_plan),
        "paid": spending(recorded),
        "outputs": output_counts(recorded, the_plan),
        "lock": lock,
    }


def output_counts(recorded: Recorded, the_plan: Plan) -> dict[str, int]:
    """How many output files are ok, missing or altered (by size and modification time; a
    file modified since it was recorded is hashed)."""
    states = output_facts(_outputs(recorded, the_plan)).values()
    return {state.value: sum(1 for s in states if s == state) for state in FileState}


def _model(recorded: Recorded, the_plan: Plan) -> dict[str, Any] | None:
    if the_plan.pipeline.training.model_id is not None:
        return {"id": the_plan.pipeline.training.model_id, "status": "given in the file"}
    planned = next((s for s in the_plan.steps if s.kind == "train"), None)
    # The model the planned scenes use (an undone edit goes back to an earlier one), else the
    # one trained last.
    train = (recorded.find("train", planned.fingerprint) if planned else None) \
        or recorded.current("train")
    if train is None:
        return None
    started = train.started_at or 0.0
    end = train.finished_at if train.status in ("done", "failed") else time.time()
    return {"id": int(train.remote_id) if train.remote_id else None,
            "status": train.outputs.get("status", train.status),
            "elapsed_seconds": round((end or started) - started, 1)}


PAID_OPS = ("start_training", "generate")


def spending(recorded: Recorded) -> dict[str, int]:
    """What this state paid for, from its recorded requests, each counted once: a training
    per model whose start landed (a resume or a poll never counts again), and an image per
    generation job that landed (a regenerated image is paid twice, and counted twice).
    Resources adopted by name were paid before this state existed and are not counted."""
    trainings = {i.remote_id for i in recorded.paid if i.op == "start_training"}
    images = sum(1 for i in recorded.paid if i.op == "generate")
    return {"trainings": len(trainings), "images": images}


def credits_spent(recorded: Recorded, the_plan: Plan) -> float:
    prices, paid = the_plan.pipeline.prices, spending(recorded)
    return paid["trainings"] * prices.training + paid["images"] * prices.image


def _outputs(recorded: Recorded, the_plan: Plan) -> list[ArtifactRow]:
    """The current output files of the scenes the file plans (done ones)."""
    planned = {(s.key, s.fingerprint) for s in the_plan.steps if s.kind == "scene"}
    step_ids = {row.id for key, rows in recorded.steps.items() for row in rows
                if (key, row.fingerprint) in planned and row.status == "done"}
    return [a for a in recorded.artifacts if a.is_current and a.step_id in step_ids]


def outputs_data(recorded: Recorded, the_plan: Plan) -> dict[str, Any]:
    """Every output file with its ``file`` state: ok, missing, or altered (each is hashed)."""
    outputs = _outputs(recorded, the_plan)
    states = output_facts(outputs, verify=True)
    made_by = _models_of_steps(recorded, the_plan)
    files = [
        {"scene": a.scene, "variation": a.variation, "path": a.path, "seed": a.seed,
         "sha256": a.sha256, "file": states[a.step_id],
         "exists": states[a.step_id] != FileState.MISSING, "model_id": made_by.get(a.step_id)}
        for a in outputs
    ]
    model = _model(recorded, the_plan)
    return {"pipeline": the_plan.pipeline.name, "model_id": model and model.get("id"),
            "files": sorted(files, key=lambda f: (f["scene"], f["variation"])),
            "previous": _previous(recorded, the_plan, made_by)}


def _previous(recorded: Recorded, the_plan: Plan, made_by: dict[int, int | None]
              ) -> list[dict[str, Any]]:
    """Earlier outputs moved aside under previous/: what each was, from the state, else from
    the record beside it (the state may not know a file another state made)."""
    from runner.engine.outputs import read_record

    scenes = {s.name for s in the_plan.pipeline.scenes}
    rows = {row.id: row for rows in recorded.steps.values() for row in rows}
    found = []
    for a in recorded.artifacts:
        if a.is_current or a.scene not in scenes:
            continue
        about, row = read_record(Path(a.path)), rows.get(a.step_id)
        prompt = row.outputs.get("inputs", {}).get("prompt") if row else None
        found.append({"scene": a.scene, "variation": a.variation, "path": a.path,
                      "seed": a.seed, "sha256": a.sha256, "exists": Path(a.path).exists(),
                      "prompt": prompt or about.get("prompt"),
                      "model_id": made_by.get(a.step_id) or about.get("model_id"),
                      "moved_at": about.get("moved_at")})
    return sorted(found, key=lambda f: (f["scene"], f["variation"], f["path"]))


def _models_of_steps(recorded: Recorded, the_plan: Plan) -> dict[int, int | None]:
    """The model that made each scene row's image: as recorded when it was made, else the
    model its inputs name (the train row of that fingerprint, or the file's model_id)."""
    found: dict[int, int | None] = {}
    for rows in (recorded.steps.get(s.key, ()) for s in the_plan.steps if s.kind == "scene"):
        for row in rows:
            made = row.outputs.get("model_id")
            if made is None:
                ref = row.outputs.get("inputs", {}).get("model", {})
                train = recorded.find("train", str(ref.get("model", "")))
                made = ref.get("model_id") or (train.remote_id if train else None)
            found[row.id] = int(made) if made is not None else None
    return found


def status_text(data: dict[str, Any]) -> str:
    lines = [f"{data['pipeline']}  (state {data['state']})"]
    model = data["model"]
    if model:
        elapsed = model.get("elapsed_seconds")
        extra = f", {elapsed / 60:.1f} min" if isinstance(elapsed, (int, float)) else ""
        lines.append(f"model {model.get('id')}: {model.get('status')}{extra}")
    else:
        lines.append("model: not trained yet")
    todo = [s for s in data["training_steps"] if s["state"] != "done"]
    total = len(data["training_steps"])
    lines.append(f"training chain: {total - len(todo)}/{total} steps done")
    for scene in data["scenes"]:
        where = f"  {scene['output']}" if scene["output"] else ""
        lines.append(f"  {scene['key']:<32} {scene['state']:<8}{where}")
    counts = data["outputs"]
    if counts["missing"] or counts["altered"]:
        lines.append(f"outputs: {counts['ok']} ok, {counts['missing']} missing, "
                     f"{counts['altered']} altered (a run restores missing ones; "
                     f"`run --restore` also altered ones, keeping them aside)")
    else:
        lines.append(f"outputs: {counts['ok']} ok")
    paid = data["paid"]
    lines.append(f"credits spent: {data['credits_spent']:g} ({paid['trainings']} training(s), "
                 f"{paid['images']} image(s), at the file's prices)")
    if data["lock"]:
        lock = data["lock"]
        lines.append(f"running now: pid {lock['pid']} on {lock['host']} since {lock['since']}")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{max(1, round(seconds / 60))} min"
