"""Cross-field rules the JSON Schema cannot say nicely.

Version-dependent ranges, the fields each scene's route takes (``scene_routes``: nothing
is dropped silently), the description a defined character needs, unique scene names, expert
parameters without expert mode, durations, image globs that would search outside the project
root. They run on the raw document even when the schema found problems (each rule
skips values of the wrong type: the schema reports those), so every problem is listed
in one go.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from runner.errors import LEGACY_END, Problem
from runner.pipeline.globs import is_glob, reach_problem
from runner.pipeline.places import project_root
from runner.pipeline.problems import format_path, show
from runner.pipeline.scene_routes import SCENE_FIELDS, scene_route, version_takes
from runner.pipeline.spec import LEGACY_VERSIONS
from runner.pipeline.yamlpos import Document, Path_

NEEDS_DESCRIPTION = ("defined_character", "object_variants")
SAMPLES = {"fibo": (5, 10), "legacy": (1, 6)}
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(s|m|h)\s*$")
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> float | None:
    """``30s``/``2m``/``1h`` or a number of seconds -> seconds; None if unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    return float(match.group(1)) * _UNIT[match.group(2)] if match else None


def training_version(data: Any) -> str:
    training = _mapping(data, "training")
    version = training.get("version", "fibo")
    return version if version in ("fibo", *LEGACY_VERSIONS) else "fibo"


class _Rules:
    def __init__(self, doc: Document, file: str) -> None:
        self.doc, self.file = doc, file
        self.data = doc.data if isinstance(doc.data, dict) else {}
        self.version = training_version(self.data)
        self.is_legacy = self.version in LEGACY_VERSIONS
        self.found: list[Problem] = []

    def add(self, path: Path_, message: str, hint: str | None = None, *, at_key: bool = False,
            severity: str = "error") -> None:
        line, col = self.doc.key_pos(path) if at_key else self.doc.pos(path)
        self.found.append(Problem(self.file, line, col, format_path(path), message, hint,
                                  severity))


def rule_problems(doc: Document, file: str) -> list[Problem]:
    """Every cross-field problem (errors and warnings) in ``doc``."""
    rules = _Rules(doc, file)
    _character(rules)
    _training(rules)
    defaults = _mapping(_mapping(rules.data, "generation"), "defaults")
    _scene_params(rules, defaults, ("generation", "defaults"), has_reference=None)
    _scenes(rules)
    _image_globs(rules)
    return rules.found


def _image_globs(r: _Rules) -> None:
    """Globs that would search outside the project root: refused from their text, at once."""
    images = _mapping(r.data, "character").get("images")
    at: Path_ = ("character", "images")
    listed = [(at, images)] if isinstance(images, str) else [
        ((*at, i), entry) for i, entry in enumerate(images if isinstance(images, list) else [])]
    pipeline = Path(r.file)
    base, root = pipeline.resolve().parent, project_root(pipeline)
    for where, entry in listed:
        if isinstance(entry, str) and is_glob(entry):
            why = reach_problem(entry, base, root)
            if why is not None:
                r.add(where, why, "name the files or folder outside the project root one by "
                      "one, or move them inside it")


def _character(r: _Rules) -> None:
    character = _mapping(r.data, "character")
    if not character and "character" not in r.data:
        return
    ip_type = character.get("type", "defined_character")
    if ip_type in NEEDS_DESCRIPTION and "description" not in character:
        r.add(("character", "description"), f"missing `description`, required for {ip_type}",
              "at most 6 words saying what the character is, e.g. `girl with blue hair`; "
              "Bria sends it as ip_description to caption and recognise the character")
    _identity(r, character.get("identity"))
    _captions(r, character.get("images"))
    samples = character.get("identity_samples")
    low, high = SAMPLES["legacy" if r.is_legacy else "fibo"]
    if isinstance(samples, int) and not isinstance(samples, bool) and not low <= samples <= high:
        r.add(("character", "identity_samples"),
              f"{samples} is outside {low}-{high}, the range for {r.version}")


def _captions(r: _Rules, images: Any) -> None:
    """fibo captions are JSON objects (Bria: "a string containing a valid JSON structure");
    legacy captions continue the caption prefix as plain text."""
    for i, entry in enumerate(images if isinstance(images, list) else []):
        caption = entry.get("caption") if isinstance(entry, dict) else None
        at = ("character", "images", i, "caption")
        if isinstance(caption, dict) and r.is_legacy:
            r.add(at, f"{r.version} captions are plain text", "write the caption as text")
        elif isinstance(caption, str) and not r.is_legacy and not _is_json_object(caption):
            r.add(at, "a fibo caption must be a JSON object (Bria takes \"a valid JSON "
                  "structure\")", "write it as a mapping, e.g. `caption: {action: waving}`")


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _identity(r: _Rules, identity: Any) -> None:
    if not isinstance(identity, dict):
        return
    if "visual_schema" in identity and r.is_legacy:
        r.add(("character", "identity", "visual_schema"),
              f"a visual schema is for fibo; {r.version} uses a caption prefix",
              "write `caption_prefix: ...` or `identity: auto`", at_key=True)
    if "caption_prefix" in identity and not r.is_legacy:
        r.add(("character", "identity", "caption_prefix"),
              "a caption prefix is for the legacy versions (light, max); fibo uses a visual "
              "schema", "write `visual_schema: ...` or `identity: auto`", at_key=True)


def _training(r: _Rules) -> None:
    training = _mapping(r.data, "training")
    if r.is_legacy and "version" in training:
        r.add(("training", "version"), f"{r.version} is a legacy model: Bria ended legacy "
              f"model support on {LEGACY_END} and no longer lists its routes",
              "train new characters on fibo with `version: fibo`; this file runs only while "
              "your Bria account still serves the legacy routes", severity="warning")
    if "expert" in training and training.get("mode", "fully_automated") != "expert":
        r.add(("training", "expert"), "expert parameters are only used with `mode: expert`",
              "add `mode: expert` or remove `expert`", at_key=True)
    seconds = parse_duration(training.get("poll_every"))
    if seconds is not None and seconds < 1 and isinstance(training.get("poll_every"), str):
        r.add(("training", "poll_every"), f"{show(training['poll_every'])} is below the "
              "minimum 1s")


def _scenes(r: _Rules) -> None:
    scenes = r.data.get("scenes")
    if not isinstance(scenes, list):
        return
    seen: dict[str, int] = {}
    for i, scene in enumerate(scenes):
        if not isinstance(scene, dict):
            continue
        name = scene.get("name")
        if isinstance(name, str) and name in seen:
            first = seen[name]
            r.add(("scenes", i, "name"), f"scene name {show(name)} is already used by "
                  f"scenes[{first}] (line {r.doc.pos(('scenes', first))[0]})",
                  "scene names must be unique: each is an output folder")
        elif isinstance(name, str):
            seen[name] = i
        _scene_params(r, scene, ("scenes", i), has_reference="reference" in scene)


def _scene_params(r: _Rules, params: dict[str, Any], at: Path_,
                  has_reference: bool | None) -> None:
    """Route rules for one scene (or the defaults, when ``has_reference`` is None): every
    field must reach the request of the route the scene takes, or it is refused here."""
    for key in SCENE_FIELDS:
        if key not in params or key == "reference":
            continue
        if has_reference is None:
            if not version_takes(r.is_legacy, key):
                why = scene_route(r.is_legacy, key == "structure_strength").refuses[key]
                _refuse(r, (*at, key), key, why, "no scene of this version can take it")
            continue
        route = scene_route(r.is_legacy, has_reference)
        if key in route.refuses:
            _refuse(r, (*at, key), key, route.refuses[key], f"this scene goes to "
                    f"{route.describe()}")
    influence = params.get("model_influence")
    if r.is_legacy and isinstance(influence, (int, float)) and not isinstance(influence, bool) \
            and influence > 1.0:
        r.add((*at, "model_influence"), f"{show(influence)} is above the maximum 1.0 for "
              f"{r.version}", "legacy models take model_influence 0.0-1.0; fibo takes 0.0-1.5")


_HINTS = {
    "guidance": "with fibo, give the scene a `reference` image",
    "structure_strength": "add `reference: <scene image>` or remove structure_strength",
}


def _refuse(r: _Rules, at: Path_, key: str, why: str, where: str) -> None:
    if why == "is for fibo only":
        r.add(at, f"`{key}` is for fibo only; {r.version} does not use it", at_key=True)
    elif why.startswith(("guidance images", "structure_strength needs")):
        r.add(at, why, _HINTS[key], at_key=True)
    else:
        r.add(at, f"`{key}` would not be sent: {why}", f"{where}; remove `{key}`",
              at_key=True)


def _mapping(data: Any, key: str) -> dict[str, Any]:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}
