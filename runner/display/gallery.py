"""The gallery's data: every scene, variation and earlier version of a pipeline, read from
the validated file, its plan and the recorded state (and what sits on disk under
``previous/``), as the plain dict that ``index.json`` holds and the page is rendered from.

Reads, never writes, except the thumbnails (``runner.display.thumbs``). Every path in the
result is relative to the outputs folder, so the page keeps working when the folder is
copied or zipped elsewhere.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.display.thumbs import ensure_thumbnails
from runner.engine.outputs import iso, sidecar_path
from runner.state.fingerprint import sha256_file

if TYPE_CHECKING:
    from runner.engine.planned import Plan, PlannedStep
    from runner.pipeline.spec import ImageRef, Pipeline, Scene
    from runner.state.rows import ArtifactRow, Recorded, StepRow

FORMAT = 1
# Values Bria uses when a field is not sent (schemas/pipeline.schema.json): not worth showing.
QUIET_SETTINGS: dict[str, object] = {"aspect_ratio": "1:1", "variations": 1,
                                     "model_influence": 1.0, "guidance_scale": 5}
SETTINGS = ("aspect_ratio", "variations", "model_influence", "guidance_scale", "steps_num",
            "structure_strength", "negative_prompt")
PREVIOUS_SCAN_LIMIT = 2000  # files looked at under one scene's previous/ folders


@dataclass
class _Builder:
    pipeline: Pipeline
    plan: Plan
    recorded: Recorded
    retry: str
    pictures: list[dict[str, Any]] = field(default_factory=list)
    sources: dict[int, Path] = field(default_factory=dict)  # id(picture) -> absolute file
    shown_artifacts: set[int] = field(default_factory=set)  # artifact ids shown as current

    def __post_init__(self) -> None:
        self.root = self.pipeline.outputs.resolve()
        self.rows: dict[int, StepRow] = {r.id: r for rows in self.recorded.steps.values()
                                         for r in rows}
        self.by_scene: dict[str, list[ArtifactRow]] = {}
        for artifact in self.recorded.artifacts:
            self.by_scene.setdefault(artifact.scene, []).append(artifact)

    def picture(self, path: Path, sha256: str, *, is_input: bool = False, **extra: Any
                ) -> dict[str, Any] | None:
        """An image of the page, if it exists inside the outputs folder; an input of the file
        (training or scene image) may live elsewhere and is shown by its thumbnail only."""
        rel = self.relative(path)
        if not path.is_file() or (rel is None and not is_input):
            return None  # gone, or a recorded path outside the outputs: never read it
        entry: dict[str, Any] = {"sha256": sha256, "file": rel, **extra,
                                 "thumb": None, "width": None, "height": None}
        self.pictures.append(entry)
        self.sources[id(entry)] = path
        return entry

    def relative(self, path: Path) -> str | None:
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return None  # an input outside the outputs: shown by its thumbnail only

    def build(self) -> dict[str, Any]:
        scenes = [self.scene(s) for s in self.pipeline.scenes]
        data = {"format": FORMAT, "generated_at": iso(time.time()),
                "pipeline": {"name": self.pipeline.name, "file": self.pipeline.path.name},
                "character": self.character(), "model": self.model(),
                "counts": _counts(scenes), "retry_command": self.retry, "scenes": scenes}
        self.attach_thumbnails()
        return data

    def attach_thumbnails(self) -> None:
        thumbs = ensure_thumbnails(self.root, [(p["sha256"], self.sources[id(p)])
                                               for p in self.pictures])
        for entry in self.pictures:
            thumb = thumbs.get(entry["sha256"])
            if thumb is not None:
                entry.update(thumb=thumb.rel, width=thumb.width, height=thumb.height)

    def character(self) -> dict[str, Any]:
        c = self.pipeline.character
        hashes = self.pipeline.image_hashes
        # An image given by URL is Bria's to fetch, never bria-run's: the page leaves it out.
        images = [self.picture(p, hashes[p], is_input=True, name=p.name)
                  for p in c.images if isinstance(p, Path) and p in hashes]
        return {"name": c.name, "description": c.description, "type": c.type,
                "medium": c.medium, "training_images": [i for i in images if i]}

    def model(self) -> dict[str, Any]:
        source = self.plan.model_source
        version = self.pipeline.training.version
        if source == "model_id":
            return {"id": self.pipeline.training.model_id, "source": source,
                    "version": version, "status": "given in the file", "trained_at": None}
        planned = next((s for s in self.plan.steps if s.kind == "train"), None)
        row = self.recorded.find("train", planned.fingerprint) if planned else None
        row = row or self.recorded.current("train")
        if row is None:
            return {"id": None, "source": source, "version": version,
                    "status": "not trained yet", "trained_at": None}
        done = row.status == "done"
        return {"id": int(row.remote_id) if row.remote_id else None, "source": source,
                "version": version, "status": str(row.outputs.get("status", row.status)),
                "trained_at": iso(row.finished_at) if done else None}

    def scene(self, scene: Scene) -> dict[str, Any]:
        steps = [s for s in self.plan.steps if s.kind == "scene" and s.scene == scene.name]
        variations = [self.variation(s) for s in steps]
        states = {v["state"] for v in variations}
        state = ("failed" if "failed" in states else
                 "pending" if states & {"pending", "missing"} else "done")
        errors = [v["error"] for v in variations if v.get("error")]
        return {
            "name": scene.name, "prompt": scene.prompt, "route": _route(scene),
            "settings": _settings(scene), "state": state,
            "reference": self.input_picture(scene.reference),
            "guidance": [{"method": g.method, "scale": g.scale,
                          "image": self.input_picture(g.image)} for g in scene.guidance],
            "error": errors[0] if errors else None,
            "retry": self.retry if state == "failed" else None,
            "variations": variations,
            "previous": self.previous(scene, variations),
        }

    def input_picture(self, path: ImageRef | None) -> dict[str, Any] | None:
        if not isinstance(path, Path) or path not in self.pipeline.image_hashes:
            return None
        return self.picture(path, self.pipeline.image_hashes[path], is_input=True,
                            name=path.name)

    def variation(self, step: PlannedStep) -> dict[str, Any]:
        row = self.recorded.find(step.key, step.fingerprint)
        entry: dict[str, Any] = {"variation": step.variation, "seed": step.seed,
                                 "state": "pending", "error": None}
        if row is not None and row.status == "failed":
            return {**entry, "state": "failed", "error": row.error}
        if row is None or row.status != "done":
            return entry
        mine = [a for a in self.by_scene.get(step.scene or "", ())
                if a.step_id == row.id and a.is_current and a.variation == step.variation]
        if not mine:
            return {**entry, "state": "missing"}
        artifact = mine[-1]
        # The picture is the entry itself: its thumbnail is filled in once all are known.
        shown = self.picture(Path(artifact.path), artifact.sha256, variation=step.variation,
                             seed=artifact.seed if artifact.seed is not None else step.seed,
                             state="done", error=None, created_at=iso(row.finished_at))
        if shown is None:
            return {**entry, "state": "missing"}  # done, but its file was moved or deleted
        self.shown_artifacts.add(artifact.id)
        return shown

    def previous(self, scene: Scene, current: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Earlier versions: recorded artifacts not shown as current, and files under
        ``previous/`` the state does not know (their sidecar says what they were)."""
        seen = {v.get("sha256") for v in current if v.get("sha256")}
        found: list[dict[str, Any]] = []
        known_paths: set[str] = set()
        for artifact in self.by_scene.get(scene.name, ()):
            known_paths.add(artifact.path)
            if artifact.id in self.shown_artifacts or artifact.sha256 in seen:
                continue
            seen.add(artifact.sha256)
            row = self.rows.get(artifact.step_id)
            path = Path(artifact.path)
            about = _read_sidecar(path)
            inputs = row.outputs.get("inputs", {}) if row is not None else {}
            made = row.finished_at if row is not None else None
            entry = self.picture(path, artifact.sha256, version="previous",
                                 variation=artifact.variation, seed=artifact.seed,
                                 prompt=inputs.get("prompt", about.get("prompt")),
                                 created_at=iso(made) or about.get("created_at"))
            if entry is not None:
                found.append(entry)
        found += self.unrecorded(scene, known_paths, seen)
        return sorted(found, key=lambda e: (e["created_at"] or "", -e["variation"]),
                      reverse=True)

    def unrecorded(self, scene: Scene, known: set[str], seen: set[str | None]
                   ) -> list[dict[str, Any]]:
        folder = self.root / scene.name / "previous"
        if not folder.is_dir():
            return []
        found: list[dict[str, Any]] = []
        for path in sorted(folder.glob("*/*.png"))[:PREVIOUS_SCAN_LIMIT]:
            if str(path) in known:
                continue
            about = _read_sidecar(path)
            sha = str(about.get("sha256") or sha256_file(path))
            if sha in seen:
                continue
            seen.add(sha)
            entry = self.picture(
                path, sha, version="previous", variation=_int(about.get("variation"), path),
                seed=about.get("seed"), prompt=about.get("prompt"),
                created_at=about.get("created_at") or iso(path.stat().st_mtime))
            if entry is not None:
                found.append(entry)
        return found


def _int(value: object, path: Path) -> int:
    if isinstance(value, int):
        return value
    return int(path.stem) if path.stem.isdigit() else 1


def _read_sidecar(image: Path) -> dict[str, Any]:
    try:
        data = json.loads(sidecar_path(image).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _route(scene: Scene) -> str:
    if scene.reference is not None:
        return "reference"
    return "guidance" if scene.guidance else "text"


def _settings(scene: Scene) -> dict[str, Any]:
    shown = {}
    for name in SETTINGS:
        value = getattr(scene, name)
        if value is not None and QUIET_SETTINGS.get(name, object()) != value:
            shown[name] = value
    if scene.seed is not None:
        shown["seed"] = scene.seed
    return shown


def _counts(scenes: list[dict[str, Any]]) -> dict[str, int]:
    variations = [v for s in scenes for v in s["variations"]]
    return {"scenes": len(scenes),
            "images": sum(1 for v in variations if v["state"] == "done"),
            "failed": sum(1 for v in variations if v["state"] == "failed"),
            "pending": sum(1 for v in variations if v["state"] in ("pending", "missing")),
            "previous": sum(len(s["previous"]) for s in scenes)}


def gallery_data(pipeline: Pipeline, the_plan: Plan, recorded: Recorded, *, retry: str
                 ) -> dict[str, Any]:
    """Everything the page shows, as index.json holds it; makes missing thumbnails."""
    return _Builder(pipeline, the_plan, recorded, retry).build()


def write_gallery(pipeline: Pipeline, the_plan: Plan, recorded: Recorded, *, retry: str
                  ) -> Path:
    """Write ``<outputs>/index.json`` and ``<outputs>/index.html`` (each atomically: a reader
    never sees half a page); return the page's path."""
    from runner.display.page import render_page

    data = gallery_data(pipeline, the_plan, recorded, retry=retry)
    root = pipeline.outputs
    _write_text(root / "index.json", json.dumps(data, indent=1) + "\n")
    page = root / "index.html"
    _write_text(page, render_page(data))
    return page


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the page from a web server or a zip
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
