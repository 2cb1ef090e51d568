"""Pipeline file -> validated ``runner.pipeline.spec.Pipeline``, or every problem at once.

Order: read the YAML safely with positions; check the schema and the cross-field rules
(all problems collected, none stops the others); resolve and check every file the pipeline
names, in the same round, unless an error touches a value those checks read (``FILE_PATHS``:
then they wait for the next round, as they could only guess); then build the frozen spec
with defaults applied and scene values merged with ``generation.defaults``. Nothing here
touches the network or the state.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from runner.errors import PipelineInvalid, Problem
from runner.pipeline import doccache
from runner.pipeline.filechecks import FileChecker, is_url_like
from runner.pipeline.places import project_root
from runner.pipeline.problems import format_path, show
from runner.pipeline.rules import parse_duration, rule_problems
from runner.pipeline.scene_routes import scene_route
from runner.pipeline.schema_problems import schema_problems
from runner.pipeline.spec import (
    LEGACY_VERSIONS,
    Character,
    Expert,
    Guidance,
    Identity,
    ImageRef,
    Pipeline,
    Prices,
    Scene,
    Training,
)
from runner.pipeline.yamlpos import Document, YamlError, YamlIssue, load

SCENE_KEYS = ("structure_strength", "aspect_ratio", "variations", "seed", "negative_prompt",
              "model_influence", "guidance_scale", "steps_num", "guidance")
DEFAULT_SAMPLES = 6
# What ``check_files`` reads (``[]``: any index). An error at one of these paths, above one
# (``scenes[2]``, ``character``) or below one (``character.images[3]``) leaves those checks
# nothing sound to read; any other error does not stop them.
FILE_PATHS = ("character.images", "character.identity", "character.identity_samples",
              "character.increase_resolution", "training.version", "scenes[].reference",
              "scenes[].guidance[].image", "outputs")
_INDEX = re.compile(r"\[\d+\]")


def load_pipeline(path: Path, *, cache: Path | None = None) -> tuple[Pipeline, list[Problem]]:
    """Load and check ``path``; return the pipeline and its warnings.

    Raises ``PipelineInvalid`` with every error and warning when any error exists.
    Positions in problems name the file as ``str(path)``, as the user gave it. ``cache``: a
    folder keeping the checked form of unchanged files (``doccache``); the files the
    document names are checked every time.
    """
    file = str(path)
    try:
        raw = _read_bytes(path, file)
        doc, problems = doccache.get(cache, raw), list[Problem]()
        if doc is None:
            doc, problems = parse_document(raw, file)
            problems += schema_problems(doc, file) + rule_problems(doc, file)
            if not problems:
                doccache.put(cache, raw, doc)
    except PipelineInvalid as exc:
        raise PipelineInvalid(_printable(exc.problems)) from None
    if _has_errors(problems) and _touches_files(problems, doc.data):
        raise PipelineInvalid(_printable(problems))
    checker = check_files(doc, file, _base(path), project_root(path))
    problems = _printable(problems + checker.problems)
    if _has_errors(problems):
        raise PipelineInvalid(problems)
    pipeline = build(doc, path, checker)
    return pipeline, sorted(problems, key=lambda p: (p.line, p.col, p.path))


def _touches_files(problems: list[Problem], data: dict[str, Any]) -> bool:
    """Whether an error sits on, above or below a value ``check_files`` reads."""
    read = FILE_PATHS + (() if "outputs" in data else ("name",))  # the default outputs use it

    def near(at: str, path: str) -> bool:
        return at == path or at == "" or path.startswith((at + ".", at + "[")) \
            or at.startswith((path + ".", path + "["))

    return any(near(_INDEX.sub("[]", p.path), path) for p in problems
               if p.severity == "error" for path in read)


def _printable(problems: list[Problem]) -> list[Problem]:
    """Escape control characters a file may hold in keys or values: one problem, one line."""
    def clean(text: str) -> str:
        return text if text.isprintable() else "".join(
            c if c.isprintable() else repr(c)[1:-1] for c in text)

    return [replace(p, path=clean(p.path), message=clean(p.message),
                    hint=clean(p.hint) if p.hint else p.hint) for p in problems]


def read_document(path: Path, file: str) -> tuple[Document, list[Problem]]:
    """The YAML document of ``path`` and its non-fatal problems (duplicate keys).

    Raises ``PipelineInvalid`` when the file cannot be a pipeline at all.
    """
    return parse_document(_read_bytes(path, file), file)


def _invalid(file: str, message: str, line: int = 1, col: int = 1, where: str = "",
             hint: str | None = None) -> PipelineInvalid:
    return PipelineInvalid([Problem(file, line, col, where, message, hint)])


def _read_bytes(path: Path, file: str) -> bytes:
    try:
        return path.read_bytes()
    except IsADirectoryError as exc:
        raise _invalid(file, "is a folder, not a pipeline file") from exc
    except FileNotFoundError as exc:
        raise _invalid(file, "no such file") from exc
    except OSError as exc:
        raise _invalid(file, f"cannot be read: {exc.strerror or exc}") from exc


def parse_document(raw: bytes, file: str) -> tuple[Document, list[Problem]]:
    """The YAML document in ``raw`` (read from ``file``) and its non-fatal problems."""
    def invalid(message: str, line: int = 1, col: int = 1, where: str = "",
                hint: str | None = None) -> PipelineInvalid:
        return _invalid(file, message, line, col, where, hint)

    try:
        doc, issues = load(raw)
    except YamlError as exc:
        raise PipelineInvalid(_problems(file, exc.issues)) from exc
    if not isinstance(doc.data, dict):
        raise invalid(f"a pipeline file is a mapping (version, name, character, scenes, ...); "
                      f"this document is {_shape(doc.data)}", *doc.pos(()))
    version = doc.data.get("version", 1)
    if version != 1 or isinstance(version, bool):
        raise invalid(f"unsupported version {show(version)}: this bria-run reads version 1",
                      *doc.pos(("version",)), "version", "write `version: 1`")
    return doc, _problems(file, issues)


def check_files(doc: Document, file: str, base: Path, root: Path) -> FileChecker:
    """Resolve and check every file ``doc`` names (the schema has passed): the checker holds
    the training images, the problems and each image's sha256."""
    data = doc.data
    character = data["character"]
    checker = FileChecker(doc, file, base, root)
    training = checker.training_images(
        character["images"], version=data.get("training", {}).get("version", "fibo"),
        increase_resolution=character.get("increase_resolution", True))
    samples = character.get("identity_samples")
    if samples is not None and character.get("identity", "auto") == "auto" and training \
            and samples > len(training):
        checker.add(("character", "identity_samples"),
                    f"{samples} samples but only {len(training)} training images")
    for i, scene in enumerate(data["scenes"]):
        if "reference" in scene:
            checker.single(scene["reference"], ("scenes", i, "reference"))
        for j, guide in enumerate(scene.get("guidance", [])):
            checker.single(guide["image"], ("scenes", i, "guidance", j, "image"))
    outputs = _outputs(data, base)
    if outputs.exists() and not outputs.is_dir():
        checker.add(("outputs",), f"`{data.get('outputs')}` exists and is not a folder")
    checker.training = training
    return checker


def build(doc: Document, path: Path, checked: FileChecker) -> Pipeline:
    """The frozen spec of a fully checked document."""
    data, base = doc.data, _base(path)
    generation = data.get("generation", {})
    credits = data.get("credits", {})
    return Pipeline(
        path=path.resolve(),
        name=data["name"],
        character=_character(data["character"], checked.training, checked.captions),
        training=_training(data.get("training", {})),
        scenes=tuple(_scene(doc, i, scene, generation.get("defaults", {}), base,
                            _is_legacy(data)) for i, scene in enumerate(data["scenes"])),
        outputs=_outputs(data, base),
        concurrency=_concurrency(generation.get("concurrency", "auto")),
        prices=Prices(training=float(credits.get("training", Prices.training)),
                      image=float(credits.get("image", Prices.image))),
        version=1,
        image_hashes=dict(checked.hashes),
    )


def _concurrency(value: int | str) -> int | None:
    """``auto`` (None) or a fixed ceiling."""
    return None if value == "auto" else int(value)


def _character(c: dict[str, Any], images: tuple[ImageRef, ...],
               captions: dict[ImageRef, str]) -> Character:
    identity = c.get("identity", "auto")
    samples = c.get("identity_samples", max(1, min(DEFAULT_SAMPLES, len(images))))
    if identity == "auto":
        ident = Identity("auto", None, samples)
    elif "visual_schema" in identity:
        schema = identity["visual_schema"]
        text = schema if isinstance(schema, str) else json.dumps(schema, sort_keys=True)
        ident = Identity("given", text, samples)
    else:
        ident = Identity("given", identity["caption_prefix"], samples)
    return Character(
        name=" ".join(c["name"].split()), type=c.get("type", "defined_character"),
        medium=c["medium"], images=images, identity=ident,
        description=" ".join(c["description"].split()) if "description" in c else None,
        increase_resolution=c.get("increase_resolution", True),
        content_moderation=c.get("content_moderation", False),
        captions=tuple(sorted(captions.items(), key=lambda pair: str(pair[0]))))


def _training(t: dict[str, Any]) -> Training:
    mode = t.get("mode", "fully_automated")
    expert = Expert(**t.get("expert", {})) if mode == "expert" else None
    poll = parse_duration(t.get("poll_every", "2m"))
    return Training(version=t.get("version", "fibo"), mode=mode, expert=expert,
                    poll_every=poll if poll is not None else 120.0, model_id=t.get("model_id"))


def _scene(doc: Document, i: int, s: dict[str, Any], defaults: dict[str, Any],
           base: Path, is_legacy: bool) -> Scene:
    # A default applies to the scenes whose route takes it (a default structure_strength
    # to the scenes with a reference); a field set on the scene itself was checked to be
    # taken. So the Scene holds exactly what will be sent.
    takes = scene_route(is_legacy, "reference" in s).takes
    merged = {key: s.get(key, defaults.get(key) if key in takes else None)
              for key in SCENE_KEYS}
    guidance = tuple(Guidance(g["method"], _image(base, g["image"]), float(g.get("scale", 1.0)))
                     for g in merged.pop("guidance") or ())
    values = {k: v for k, v in merged.items() if v is not None}
    for key in ("structure_strength", "model_influence"):
        if key in values:
            values[key] = float(values[key])
    return Scene(name=s["name"], prompt=s["prompt"], line=doc.pos(("scenes", i))[0],
                 reference=_image(base, s["reference"]) if "reference" in s else None,
                 guidance=guidance, **values)


def _outputs(data: dict[str, Any], base: Path) -> Path:
    return _resolve(base, data.get("outputs") or f"outputs/{data['name']}")


def _image(base: Path, value: str) -> ImageRef:
    """An https URL as it is (validation refused other schemes), else the resolved file."""
    return value if is_url_like(value) else _resolve(base, value)


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return (path if path.is_absolute() else base / path).resolve()


def _base(path: Path) -> Path:
    return path.resolve().parent


def _is_legacy(data: dict[str, Any]) -> bool:
    return data.get("training", {}).get("version", "fibo") in LEGACY_VERSIONS


def _has_errors(problems: list[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)


def _shape(data: Any) -> str:
    if isinstance(data, list):
        return "a list"
    if isinstance(data, str):
        return f"the text {show(data)}"
    return f"the value {show(data)}"


def _problems(file: str, issues: list[YamlIssue]) -> list[Problem]:
    return [Problem(file, i.line, i.col, format_path(i.path), i.message, i.hint) for i in issues]
