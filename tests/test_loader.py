"""Loading: safe YAML with positions, and the spec built from a valid file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from runner.errors import PipelineInvalid
from runner.pipeline.loader import load_pipeline
from runner.pipeline.yamlpos import MAX_NODES, YamlError, load

EXAMPLES = Path(__file__).resolve().parent.parent / "pipelines" / "luna"

BOMB = b"""\
a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
"""


def test_positions_of_values_and_keys_are_one_based() -> None:
    doc, issues = load(b"a: 1\nb:\n  - x\n  - {c: 2}\n")
    assert issues == []
    assert doc.data == {"a": 1, "b": ["x", {"c": 2}]}
    assert doc.values[("a",)] == (1, 4)
    assert doc.values[("b", 1, "c")] == (4, 9)
    assert doc.keys[("b", 1, "c")] == (4, 6)
    assert doc.pos(("b", 1, "missing")) == (4, 5)  # nearest existing ancestor


def test_duplicate_keys_are_problems_and_the_first_value_is_kept() -> None:
    doc, issues = load(b"a: 1\nb: 2\na: 3\n")
    assert doc.data == {"a": 1, "b": 2}
    assert [(i.line, i.col, i.message) for i in issues] == [
        (3, 1, "duplicate key `a` (already set on line 1)")]


@pytest.mark.parametrize(("raw", "where", "message"), [
    (BOMB, (1, 29), f"the document expands to more than {MAX_NODES} values"),
    (b"&a [*a]\n", (1, 1), "the document is nested more than 64 levels deep"),
    (b"", (1, 1), "the file is empty"),
    (b"# only a comment\n\n", (1, 1), "the file is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", (1, 1), "this is a binary file, not a YAML text file"),
    (b"name: caf\xe9\n", (1, 1), "the file is not UTF-8 text (byte 9 cannot be decoded)"),
    (b"a: [1\n", (2, 1), "YAML syntax error: did not find expected ',' or ']'"),
], ids=["alias-bomb", "recursive-alias", "empty", "comments-only", "binary", "latin-1", "syntax"])
def test_unreadable_documents(raw: bytes, where: tuple[int, int], message: str) -> None:
    with pytest.raises(YamlError) as caught:
        load(raw)
    issue = caught.value.issues[0]
    assert ((issue.line, issue.col), issue.message) == (where, message)


def test_unsafe_tags_are_not_executed() -> None:
    doc, issues = load(b"a: !!python/object/apply:os.system ['echo hi']\n")
    assert doc.data == {"a": None}
    assert issues[0].message == "unsupported YAML tag `tag:yaml.org,2002:python/object/apply:os.system`"
    doc, issues = load(b"a: !!python/name:os.system ''\n")
    assert doc.data == {"a": None}
    assert issues[0].message.startswith("cannot read this value")


def test_yaml_booleans_in_keys_stay_as_written() -> None:
    doc, _ = load(b"on: 1\nyes: 2\n")
    assert doc.data == {"on": 1, "yes": 2}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES / "training", tmp_path / "imgs")
    shutil.copy(EXAMPLES / "scenes" / "forest.png", tmp_path / "forest.png")
    shutil.copy(EXAMPLES / "guidance" / "castle-depth.png", tmp_path / "depth.png")
    return tmp_path


def write(project: Path, text: str) -> Path:
    path = project / "p.yaml"
    path.write_text(text)
    return path


HEAD = """\
version: 1
name: demo
character:
  name: "  Luna   Star "
  description: girl with blue hair
  medium: illustration
  images: ["imgs/0[1-3]*.png", imgs/, imgs/01-front-smile.png]
"""


def test_spec_of_a_fibo_file_with_defaults_merged(project: Path) -> None:
    path = write(project, HEAD + """\
  identity: {visual_schema: {b: 1, a: [x]}}
training: {poll_every: 30s}
generation: {concurrency: 2, defaults: {seed: 5, aspect_ratio: "4:3", model_influence: 1}}
credits: {image: 2.5}
scenes:
  - name: forest
    reference: forest.png
    prompt: Luna in a forest
  - name: reading
    prompt: Luna reading
    aspect_ratio: "16:9"
    variations: 2
""")
    spec, warnings = load_pipeline(path)
    # 10 images: only the best-practice advice (the user's guide finds 15-30 optimal)
    assert [w.path for w in warnings] == ["character.images"]
    assert spec.path == path.resolve() and spec.outputs == (project / "outputs" / "demo").resolve()
    assert spec.character.name == "Luna Star"
    assert spec.character.images == tuple(sorted((project / "imgs").resolve().glob("*.png")))
    assert spec.character.identity.mode == "given"
    assert spec.character.identity.text == json.dumps({"a": ["x"], "b": 1}, sort_keys=True)
    assert spec.training.poll_every == 30.0 and spec.training.version == "fibo"
    assert (spec.concurrency, spec.prices.image, spec.prices.training) == (2, 2.5, 80.0)
    forest, reading = spec.scenes
    assert (forest.line, forest.reference, forest.seed, forest.aspect_ratio) == (
        13, (project / "forest.png").resolve(), 5, "4:3")
    assert (reading.aspect_ratio, reading.variations, reading.seed) == ("16:9", 2, 5)
    assert isinstance(reading.model_influence, float) and reading.model_influence == 1.0


def test_spec_of_a_legacy_file(project: Path) -> None:
    path = write(project, HEAD + """\
  identity: {caption_prefix: "Luna, a girl with blue hair,"}
training: {version: max, mode: expert, expert: {rank: 16, lr_scheduler: cosine}, poll_every: 90}
generation: {defaults: {structure_strength: 0.4}}
outputs: /tmp/elsewhere
scenes:
  - name: forest
    reference: forest.png
    prompt: Luna in a forest
  - name: castle
    prompt: Luna at the castle
    guidance: [{method: controlnet_depth, image: depth.png}]
""")
    spec, _ = load_pipeline(path)
    assert spec.is_legacy and spec.training.poll_every == 90.0
    assert spec.training.expert is not None
    assert spec.training.expert.as_params() == {"rank": 16, "lr_scheduler": "cosine"}
    assert spec.character.identity.text == "Luna, a girl with blue hair,"
    forest, castle = spec.scenes
    assert forest.structure_strength == 0.4
    assert castle.structure_strength is None  # a default strength needs a reference
    assert castle.guidance[0].image == (project / "depth.png").resolve()
    assert castle.guidance[0].scale == 1.0
    assert spec.outputs == Path("/tmp/elsewhere")


def test_identity_samples_default_is_capped_by_the_image_count(project: Path) -> None:
    path = write(project, HEAD.replace('["imgs/0[1-3]*.png", imgs/, imgs/01-front-smile.png]',
                                       "[imgs/01-front-smile.png, imgs/02-laugh.png]")
                 + "training: {version: light}\nscenes: [{name: a, prompt: b}]\n")
    spec, _ = load_pipeline(path)
    assert spec.character.identity.samples == 2


def test_more_samples_than_images_is_an_error(project: Path) -> None:
    path = write(project, HEAD.replace('["imgs/0[1-3]*.png", imgs/, imgs/01-front-smile.png]',
                                       "[imgs/01-front-smile.png]")
                 + "  identity_samples: 3\ntraining: {version: light}\n"
                   "scenes: [{name: a, prompt: b}]\n")
    with pytest.raises(PipelineInvalid) as caught:
        load_pipeline(path)
    assert [str(p) for p in caught.value.errors] == [
        f"{path}:8:21: character.identity_samples: 3 samples but only 1 training images"]


def test_invalid_carries_errors_and_warnings_sorted(project: Path) -> None:
    path = write(project, HEAD + """\
training: {version: light}
scenes:
  - name: forest
    prompt: Luna in a forest
    variations: 0
""")
    with pytest.raises(PipelineInvalid) as caught:
        load_pipeline(path)
    # The schema error (line 12) leaves the file checks free to run: their warning on the
    # training set (line 7) comes in the same round.
    assert [(p.line, p.severity) for p in caught.value.problems] == [
        (7, "warning"), (8, "warning"), (12, "error")]
    assert "the user's guide advises 15-50 images for light" in caught.value.problems[0].message
    assert [p.line for p in caught.value.errors] == [12]
