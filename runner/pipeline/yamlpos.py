"""Safe YAML loading that remembers where every value and key sits in the file.

PyYAML's ``safe_load`` forgets positions, silently keeps the last of two duplicate keys
and expands aliases without limit (a few lines can expand to billions of nodes). Here
the document is composed into nodes (which keep their marks and share aliased nodes),
then converted by hand: duplicate keys are problems, expansion has a node budget and a
depth limit, and every value's position is kept by its path, e.g. ``("scenes", 2,
"prompt")``. Positions are 1-based (line, column).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

try:  # the C parser is several times faster and keeps the same marks
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

Path_ = tuple[str | int, ...]
Pos = tuple[int, int]

MAX_NODES = 250_000  # above any 2 MB file without aliases; stops alias bombs early
MAX_DEPTH = 64
MAX_BYTES = 2_000_000
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


@dataclass(frozen=True)
class YamlIssue:
    """One problem found while reading the document, at a 1-based position."""

    line: int
    col: int
    path: Path_
    message: str
    hint: str | None = None


@dataclass
class Document:
    """Plain data (dict/list/scalars) plus the position of every value and mapping key."""

    data: Any
    values: dict[Path_, Pos] = field(default_factory=dict)
    keys: dict[Path_, Pos] = field(default_factory=dict)

    def pos(self, path: Path_) -> Pos:
        """Position of the value at ``path``, or of its nearest existing ancestor."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.values:
                return self.values[path[:end]]
        return (1, 1)

    def key_pos(self, path: Path_) -> Pos:
        """Position of the key that holds ``path`` (falls back to the value)."""
        return self.keys.get(path) or self.pos(path)


class YamlError(Exception):
    """The document cannot be read at all; carries the problems found."""

    def __init__(self, issues: list[YamlIssue]) -> None:
        super().__init__(issues)
        self.issues = issues


def load(raw: bytes) -> tuple[Document, list[YamlIssue]]:
    """Parse ``raw``; return the document and non-fatal issues (duplicate keys).

    Raises ``YamlError`` when there is no usable document (binary, syntax error, empty,
    alias bomb).
    """
    text = _decode(raw)
    node = _compose(text)
    builder = _Builder()
    data = builder.convert(node, ())
    if builder.fatal:
        raise YamlError(builder.fatal)
    return Document(data, builder.values, builder.keys), builder.issues


def _decode(raw: bytes) -> str:
    if len(raw) > MAX_BYTES:
        raise YamlError([YamlIssue(1, 1, (), f"the file is {len(raw)} bytes; a pipeline "
                                                f"file is at most {MAX_BYTES} bytes")])
    if b"\x00" in raw:
        raise YamlError([YamlIssue(1, 1, (), "this is a binary file, not a YAML text file")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YamlError([YamlIssue(line, 1, (), "the file is not UTF-8 text "
                                                 f"(byte {exc.start} cannot be decoded)")]) from exc
    if not text.strip() or all(_is_comment(line) for line in text.splitlines()):
        raise YamlError([YamlIssue(1, 1, (), "the file is empty",
                                   "start from pipelines/luna.yaml")])
    return text


def _is_comment(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#") or stripped in ("---", "...")


def _compose(text: str) -> yaml.Node:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        if "expected a single document" in str(exc):
            what = "the file holds several YAML documents (---); a pipeline is one document"
        raise YamlError([YamlIssue(line, col, (), f"YAML syntax error: {what}")]) from exc
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        line, col = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
        raise YamlError([YamlIssue(line, col, (), f"character #x{exc.character:04x} is not "
                                   "allowed in YAML (a control character)")]) from exc
    except yaml.YAMLError as exc:
        what = " ".join(str(exc).split())
        raise YamlError([YamlIssue(1, 1, (), f"YAML error: {what}")]) from exc
    except RecursionError as exc:
        raise YamlError([YamlIssue(1, 1, (), "the document is nested too deeply")]) from exc
    finally:
        loader.dispose()
    if node is None:
        raise YamlError([YamlIssue(1, 1, (), "the file is empty", "start from pipelines/luna.yaml")])
    return node


class _Builder:
    """Converts composed nodes to plain data, recording positions and problems."""

    def __init__(self) -> None:
        self.values: dict[Path_, Pos] = {}
        self.keys: dict[Path_, Pos] = {}
        self.issues: list[YamlIssue] = []
        self.fatal: list[YamlIssue] = []
        self.budget = MAX_NODES
        self.scalars = _Loader("")  # a constructor for scalars only (bool, int, float, null...)

    def convert(self, node: yaml.Node, path: Path_) -> Any:
        if self.fatal:
            return None
        self.budget -= 1
        if self.budget < 0 or len(path) > MAX_DEPTH:
            line, col = _mark(node)
            why = (f"the document expands to more than {MAX_NODES} values" if self.budget < 0
                   else f"the document is nested more than {MAX_DEPTH} levels deep")
            self.fatal.append(YamlIssue(line, col, (), why, "aliases (*name) that expand "
                                        "into themselves or into huge trees are refused"))
            return None
        self.values[path] = _mark(node)
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
            line, col = _mark(node)
            self.issues.append(YamlIssue(line, col, path, f"unsupported YAML tag `{node.tag}`"))
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                line, col = _mark(key_node)
                self.issues.append(YamlIssue(line, col, path, "a key must be a plain word, "
                                             "not a list or a mapping"))
                continue
            key = str(key_node.value)
            child = (*path, key)
            if key in result:
                line, col = _mark(key_node)
                first = self.keys[child][0]
                self.issues.append(YamlIssue(line, col, child, f"duplicate key `{key}` "
                                             f"(already set on line {first})",
                                             "YAML keeps only one of them: remove or merge them"))
                continue
            self.keys[child] = _mark(key_node)
            result[key] = self.convert(value_node, child)
        return result

    def _scalar(self, node: yaml.Node, path: Path_) -> Any:
        try:
            return self.scalars.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            line, col = _mark(node)
            self.issues.append(YamlIssue(line, col, path, f"cannot read this value: "
                                         f"{getattr(exc, 'problem', None) or exc}"))
            return None


def _mark(node: yaml.Node) -> Pos:
    return (node.start_mark.line + 1, node.start_mark.column + 1)
