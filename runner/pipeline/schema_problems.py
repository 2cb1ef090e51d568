"""Check a pipeline document against the JSON Schema; problems in plain words.

jsonschema's own messages ("1.5 is greater than the maximum of 1") are written for
developers; users get `1.5 is above the maximum 1.0`, `unknown key `structure_strenght``
with a did-you-mean hint, and each at the position of the value (an unknown key: at the
key; a missing key: at the mapping that lacks it).
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from runner.errors import Problem
from runner.pipeline.problems import format_path, show
from runner.pipeline.schema import load_schema
from runner.pipeline.yamlpos import Document, Path_

_KINDS = {"string": "text", "number": "a number", "integer": "a whole number",
          "boolean": "true or false", "object": "a mapping", "array": "a list", "null": "null"}


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema())


def schema_problems(doc: Document, file: str) -> list[Problem]:
    """Every schema violation in ``doc``, translated, de-duplicated."""
    found: dict[tuple[Any, ...], Problem] = {}
    for error in _validator().iter_errors(doc.data):
        for problem in _translate(error, doc, file):
            found.setdefault((problem.line, problem.col, problem.path, problem.message), problem)
    return list(found.values())


def _translate(error: ValidationError, doc: Document, file: str) -> list[Problem]:
    path: Path_ = tuple(error.absolute_path)
    kind = error.validator
    if kind in ("anyOf", "oneOf"):
        return _alternatives(error, doc, file)
    if kind == "additionalProperties":
        return _unknown_keys(error, doc, file)
    if kind == "required":
        return _missing_keys(error, doc, file)
    if kind == "type" and "enum" in error.schema:
        return []  # the enum problem says it better, once
    line, col = doc.pos(path)
    message, hint = _describe(error, path)
    return [Problem(file, line, col, format_path(path), message, hint)]


def _unknown_keys(error: ValidationError, doc: Document, file: str) -> list[Problem]:
    allowed = sorted(error.schema.get("properties", {}))
    problems = []
    for key in error.instance:
        if key in allowed:
            continue
        child: Path_ = (*tuple(error.absolute_path), key)
        hint = _key_hint(str(key), allowed, error.schema)
        line, col = doc.key_pos(child)
        problems.append(Problem(file, line, col, format_path(child), f"unknown key `{key}`", hint))
    return problems


def _key_hint(key: str, allowed: list[str], schema: dict[str, Any]) -> str:
    near = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if near:
        return f"did you mean `{near[0]}`?"
    for name, sub in schema.get("properties", {}).items():
        if key in sub.get("properties", {}):
            return f"`{key}` belongs under `{name}`"
    return "allowed here: " + ", ".join(allowed)


def _missing_keys(error: ValidationError, doc: Document, file: str) -> list[Problem]:
    path: Path_ = tuple(error.absolute_path)
    line, col = doc.pos(path)
    problems = []
    for key in error.validator_value:
        if key in error.instance:
            continue
        about = error.schema.get("properties", {}).get(key, {}).get("description", "")
        hint = about.split(". ")[0].rstrip(".") if about else None
        problems.append(Problem(file, line, col, format_path((*path, key)),
                                f"missing required key `{key}`", hint))
    return problems


def _alternatives(error: ValidationError, doc: Document, file: str) -> list[Problem]:
    """anyOf/oneOf: report the branch whose shape fits the value, else list the shapes."""
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context or []:
        branches.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
    fitting = [errs for errs in branches.values() if not any(_is_shape_error(e) for e in errs)]
    if fitting:
        best = min(fitting, key=len)
        return [p for sub in best for p in _translate(sub, doc, file)]
    path: Path_ = tuple(error.absolute_path)
    shapes = " or ".join(_shape(branch) for branch in error.validator_value)
    line, col = doc.pos(path)
    return [Problem(file, line, col, format_path(path),
                    f"expected {shapes}, found {_kind_of(error.instance)}")]


def _is_shape_error(error: ValidationError) -> bool:
    return error.validator in ("type", "const") and not error.relative_path


def _shape(branch: dict[str, Any]) -> str:
    if "const" in branch:
        return show(branch["const"])
    kind = branch.get("type", "value")
    kinds: list[str] = kind if isinstance(kind, list) else [kind]
    text = " or ".join(_KINDS.get(k) or k for k in kinds)
    if "required" in branch:
        text += " with " + ", ".join(f"`{k}`" for k in branch["required"])
    if "pattern" in branch and kind == "string":
        text = "text like 30s, 2m or 1h"
    return text


def _kind_of(value: Any) -> str:
    return f"text {show(value)}" if isinstance(value, str) else show(value)


def _describe(error: ValidationError, path: Path_) -> tuple[str, str | None]:
    """Message and hint for a single-keyword violation."""
    kind, want, value = error.validator, error.validator_value, error.instance
    if kind == "type":
        return _type_message(want, value)
    if kind in ("minimum", "exclusiveMinimum"):
        return f"{show(value)} is below the minimum {want}", None
    if kind in ("maximum", "exclusiveMaximum"):
        return f"{show(value)} is above the maximum {want}", None
    if kind == "enum":
        return _enum_message(want, value)
    if kind == "const":
        if path == ("version",):
            return (f"unsupported version {show(value)}: this bria-run reads version {want}",
                    "write `version: 1`")
        return f"must be {show(want)}", None
    if kind == "pattern":
        return _pattern_message(path, value)
    if kind == "minLength":
        return "must not be empty", None
    if kind == "maxLength":
        return f"is {len(value)} characters long; at most {want}", None
    if kind == "minItems":
        return f"needs at least {want} item{'s' if want != 1 else ''}", None
    if kind == "maxItems":
        return f"has {len(value)} items; at most {want}", None
    return str(error.message), None


def _type_message(want: str | list[str], value: Any) -> tuple[str, str | None]:
    kinds = want if isinstance(want, list) else [want]
    expected = " or ".join(_KINDS.get(k) or k for k in kinds)
    hint = None
    if isinstance(value, str) and ("number" in kinds or "integer" in kinds) and _is_float(value):
        hint = "YAML reads numbers like 1e-5 as text; write 1.0e-5"
    if isinstance(value, float) and kinds == ["integer"]:
        return f"{show(value)} is not a whole number", None
    return f"expected {expected}, found {_kind_of(value)}", hint


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _enum_message(options: list[Any], value: Any) -> tuple[str, str | None]:
    listed = ", ".join(str(o) for o in options)
    near = difflib.get_close_matches(str(value), [str(o) for o in options], n=1, cutoff=0.5)
    hint = f"did you mean `{near[0]}`?" if near and isinstance(value, str) else None
    if ":" in listed and not isinstance(value, str):
        hint = 'quote aspect ratios like "16:9": unquoted, YAML reads them as base-60 numbers'
    return f"{show(value)} is not one of: {listed}", hint


def _pattern_message(path: Path_, value: str) -> tuple[str, str | None]:
    words = len(value.split())
    if path == ("name",):
        return (f"{show(value)} is not a valid pipeline name",
                "use 1-40 lowercase letters, digits and -, starting with a letter or digit")
    if path == ("character", "name"):
        return f"{show(value)} has {words} words; Bria accepts 1-3", None
    if path == ("character", "description"):
        return f"{show(value)} has {words} words; Bria accepts at most 6", None
    if len(path) == 3 and path[0] == "scenes" and path[2] == "name":
        return (f"{show(value)} is not a safe folder name",
                "use 1-64 lowercase letters, digits, - and _, starting with a letter or digit")
    if path and path[-1] == "poll_every":
        return f"{show(value)} is not a duration", "write it like 30s, 2m or 1h"
    return f"{show(value)} does not match the expected form", None
