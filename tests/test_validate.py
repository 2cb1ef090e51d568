"""`bria-run validate` on broken pipeline files: exit code, position and exact message.

Every case starts from BASE (a valid fibo pipeline with real images in a temporary
folder), changes it, and expects one exact `file:line:col: path: message` line on stderr.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from runner.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "pipelines" / "luna"

BASE = """\
version: 1
name: demo
character:
  name: Luna
  description: girl with blue hair
  medium: illustration
  images: [training/]
scenes:
  - name: forest
    prompt: Luna in a forest
"""
# line 1 version, 2 name, 3 character, 4-7 its keys, 8 scenes, 9 - name, 10 prompt


def edit(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


def add(text: str) -> str:
    return BASE + text


LEGACY = "training: {version: light}\n"  # line 11 when added

CASES = [
    # (id, document, expected "line:col: path: message" after "p.yaml:")
    ("version-2", edit("version: 1", "version: 2"),
     "1:10: version: unsupported version 2: this bria-run reads version 1"),
    ("version-text", edit("version: 1", "version: one"),
     "1:10: version: unsupported version `one`: this bria-run reads version 1"),
    ("version-missing", edit("version: 1\n", ""),
     "1:1: version: missing required key `version`"),
    ("name-uppercase", edit("name: demo", "name: Demo"),
     "2:7: name: `Demo` is not a valid pipeline name"),
    ("name-missing", edit("name: demo\n", ""), "1:1: name: missing required key `name`"),
    ("unknown-top-key", add("colour: blue\n"),
     "11:1: colour: unknown key `colour`"),
    ("typo-top-key", add("scene: []\n"), "11:1: scene: unknown key `scene`"),
    ("character-name-4-words", edit("name: Luna", "name: Luna the Great Explorer"),
     "4:9: character.name: `Luna the Great Explorer` has 4 words; Bria accepts 1-3"),
    ("description-7-words", edit("girl with blue hair", "a small girl with long blue hair"),
     ("5:16: character.description: `a small girl with long blue hair` has 7 words; "
     "Bria accepts at most 6")),
    ("description-missing", edit("  description: girl with blue hair\n", ""),
     "4:3: character.description: missing `description`, required for defined_character"),
    ("description-missing-object-variants",
     edit("  description: girl with blue hair\n", "  type: object_variants\n"),
     "4:3: character.description: missing `description`, required for object_variants"),
    ("ip-type-unknown", edit("  medium:", "  type: hero\n  medium:"),
     ("6:9: character.type: `hero` is not one of: defined_character, character_variants, "
     "object_variants, multi_object_set, icons, stylized_scene, other")),
    ("medium-unknown", edit("medium: illustration", "medium: drawing"),
     "6:11: character.medium: `drawing` is not one of: photography, illustration"),
    ("medium-missing", edit("  medium: illustration\n", ""),
     "4:3: character.medium: missing required key `medium`"),
    ("images-empty-list", edit("images: [training/]", "images: []"),
     "7:11: character.images: needs at least 1 item"),
    ("identity-unknown-text", add("").replace("  images:", "  identity: manual\n  images:"),
     ("7:13: character.identity: expected `auto` or a mapping with `visual_schema` or a "
     "mapping with `caption_prefix`, found text `manual`")),
    ("caption-prefix-on-fibo",
     edit("  images:", "  identity: {caption_prefix: Luna a girl}\n  images:"),
     ("7:14: character.identity.caption_prefix: a caption prefix is for the legacy versions "
     "(light, max); fibo uses a visual schema")),
    ("visual-schema-on-legacy",
     add(LEGACY).replace("  images:", "  identity: {visual_schema: x}\n  images:"),
     ("7:14: character.identity.visual_schema: a visual schema is for fibo; light uses a "
     "caption prefix")),
    ("identity-samples-fibo-range", edit("  images:", "  identity_samples: 3\n  images:"),
     "7:21: character.identity_samples: 3 is outside 5-10, the range for fibo"),
    ("identity-samples-legacy-range",
     add(LEGACY).replace("  images:", "  identity_samples: 8\n  images:"),
     "7:21: character.identity_samples: 8 is outside 1-6, the range for light"),
    ("increase-resolution-not-bool",
     edit("  images:", "  increase_resolution: maybe\n  images:"),
     "7:24: character.increase_resolution: expected true or false, found text `maybe`"),
    ("training-version-unknown", add("training: {version: turbo}\n"),
     "11:21: training.version: `turbo` is not one of: fibo, light, max"),
    ("training-mode-unknown", add("training: {mode: manual}\n"),
     "11:18: training.mode: `manual` is not one of: fully_automated, expert"),
    ("expert-without-mode", add("training: {expert: {rank: 8}}\n"),
     "11:12: training.expert: expert parameters are only used with `mode: expert`"),
    ("expert-rank-too-low", add("training: {mode: expert, expert: {rank: 2}}\n"),
     "11:41: training.expert.rank: 2 is below the minimum 4"),
    ("expert-lr-as-text", add("training: {mode: expert, expert: {learning_rate: 1e-5}}\n"),
     "11:50: training.expert.learning_rate: expected a number, found text `1e-5`"),
    ("expert-scheduler-unknown", add("training: {mode: expert, expert: {lr_scheduler: step}}\n"),
     ("11:49: training.expert.lr_scheduler: `step` is not one of: linear, cosine, "
     "cosine_with_restarts, polynomial, constant, constant_with_warmup")),
    ("learning-rate-misplaced", add("training: {learning_rate: 0.001}\n"),
     "11:12: training.learning_rate: unknown key `learning_rate`"),
    ("poll-every-zero", add("training: {poll_every: 0s}\n"),
     "11:24: training.poll_every: `0s` is below the minimum 1s"),
    ("poll-every-garbage", add("training: {poll_every: soon}\n"),
     "11:24: training.poll_every: `soon` is not a duration"),
    ("model-id-zero", add("training: {model_id: 0}\n"),
     "11:22: training.model_id: 0 is below the minimum 1"),
    ("concurrency-too-high", add("generation: {concurrency: 64}\n"),
     "11:27: generation.concurrency: 64 is above the maximum 32"),
    ("concurrency-word", add("generation: {concurrency: fast}\n"),
     ("11:27: generation.concurrency: expected `auto` or a whole number, "
      "found text `fast`")),
    ("defaults-unknown-key", add("generation: {defaults: {sead: 1}}\n"),
     "11:25: generation.defaults.sead: unknown key `sead`"),
    ("scenes-empty", edit("scenes:\n  - name: forest\n    prompt: Luna in a forest\n",
                          "scenes: []\n"),
     "8:9: scenes: needs at least 1 item"),
    ("scenes-missing", edit("scenes:\n  - name: forest\n    prompt: Luna in a forest\n", ""),
     "1:1: scenes: missing required key `scenes`"),
    ("scene-prompt-missing", edit("    prompt: Luna in a forest\n", ""),
     "9:5: scenes[0].prompt: missing required key `prompt`"),
    ("scene-prompt-empty", edit("prompt: Luna in a forest", 'prompt: ""'),
     "10:13: scenes[0].prompt: must not be empty"),
    ("scene-name-unsafe", edit("name: forest", "name: ../forest"),
     "9:11: scenes[0].name: `../forest` is not a safe folder name"),
    ("scene-name-duplicate", add("  - name: forest\n    prompt: again\n"),
     "11:11: scenes[1].name: scene name `forest` is already used by scenes[0] (line 9)"),
    ("scene-key-typo", add("    structure_strenght: 0.5\n"),
     ("11:5: scenes[0].structure_strenght: unknown key `structure_strenght` "
     "(did you mean `structure_strength`?)")),
    ("structure-strength-too-high",
     add("    reference: scene.png\n    structure_strength: 1.5\n    aspect_ratio: '1:1'\n"),
     "12:25: scenes[0].structure_strength: 1.5 is above the maximum 1.0"),
    ("structure-strength-without-reference", add(LEGACY.replace("training", "    seed: 1\n"
                                                                "    structure_strength: 0.5\n"
                                                                "training")),
     "12:5: scenes[0].structure_strength: structure_strength needs a `reference` image"),
    ("aspect-ratio-unquoted", add("    aspect_ratio: 16:9\n"),
     ("11:19: scenes[0].aspect_ratio: 969 is not one of: 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, "
     "9:16, 16:9")),
    ("aspect-ratio-unknown", add("    aspect_ratio: '21:9'\n"),
     "11:19: scenes[0].aspect_ratio: `21:9` is not one of"),
    ("variations-too-many", add("    variations: 5\n"),
     "11:17: scenes[0].variations: 5 is above the maximum 4"),
    ("variations-fraction", add("    variations: 1.5\n"),
     "11:17: scenes[0].variations: 1.5 is not a whole number"),
    ("seed-negative", add("    seed: -1\n"), "11:11: scenes[0].seed: -1 is below the minimum 0"),
    ("seed-too-big", add("    seed: 4294967296\n"),
     "11:11: scenes[0].seed: 4294967296 is above the maximum 2147483647"),
    ("model-influence-fibo", add("    model_influence: 1.6\n"),
     "11:22: scenes[0].model_influence: 1.6 is above the maximum 1.5"),
    ("model-influence-legacy", add("    model_influence: 1.2\n" + LEGACY),
     "11:22: scenes[0].model_influence: 1.2 is above the maximum 1.0 for light"),
    ("guidance-scale-range", add("    guidance_scale: 7\n"),
     "11:21: scenes[0].guidance_scale: 7 is above the maximum 5"),
    ("steps-num-legacy", add("    steps_num: 30\n" + LEGACY),
     "11:5: scenes[0].steps_num: `steps_num` is for fibo only; light does not use it"),
    ("legacy-reference-aspect-ratio",
     add("    reference: scene.png\n    aspect_ratio: '16:9'\n" + LEGACY),
     ("12:5: scenes[0].aspect_ratio: `aspect_ratio` would not be sent: /v1/reimagine takes no "
      "aspect ratio: the result keeps the reference's framing (this scene goes to legacy "
      "reference (POST /v1/reimagine); remove `aspect_ratio`)")),
    ("legacy-reference-negative-prompt",
     add("    reference: scene.png\n    negative_prompt: blur\n" + LEGACY),
     ("12:5: scenes[0].negative_prompt: `negative_prompt` would not be sent: /v1/reimagine "
     "takes no negative prompt")),
    ("legacy-reference-guidance",
     add("    reference: scene.png\n    guidance: [{method: controlnet_depth, image: scene.png}]\n"
         + LEGACY),
     "12:5: scenes[0].guidance: `guidance` would not be sent: /v1/reimagine takes no guidance"),
    ("fibo-reference-structure-strength",
     add("    reference: scene.png\n    structure_strength: 0.5\n"),
     ("12:5: scenes[0].structure_strength: `structure_strength` would not be sent: fibo reads "
     "the reference through a structured prompt")),
    ("fibo-default-structure-strength",
     add("generation: {defaults: {structure_strength: 0.5}}\n"),
     ("11:25: generation.defaults.structure_strength: `structure_strength` would not be sent: "
     "fibo reads the reference")),
    ("guidance-on-fibo", add("    guidance: [{method: controlnet_depth, image: scene.png}]\n"),
     "11:5: scenes[0].guidance: guidance images are for the legacy versions (light, max) only"),
    ("guidance-method-unknown",
     add("    guidance: [{method: controlnet_pose, image: scene.png}]\n" + LEGACY),
     "11:25: scenes[0].guidance[0].method: `controlnet_pose` is not one of"),
    ("guidance-too-many", add("    guidance: [{method: controlnet_depth, image: scene.png}, "
                              "{method: controlnet_canny, image: scene.png}, "
                              "{method: controlnet_canny, image: scene.png}]\n" + LEGACY),
     "11:15: scenes[0].guidance: has 3 items; at most 2"),
    ("guidance-scale-too-high",
     add("    guidance: [{method: controlnet_depth, image: scene.png, scale: 1.5}]\n" + LEGACY),
     "11:68: scenes[0].guidance[0].scale: 1.5 is above the maximum 1.0"),
    ("credits-negative", add("credits: {image: -3}\n"),
     "11:18: credits.image: -3 is below the minimum 0"),
    ("duplicate-key", edit("  medium: illustration\n",
                           "  medium: illustration\n  medium: photography\n"),
     "7:3: character.medium: duplicate key `medium` (already set on line 6)"),
    ("not-a-mapping", "- version: 1\n- name: demo\n",
     ("1:1: a pipeline file is a mapping (version, name, character, scenes, ...); this "
     "document is a list")),
    ("yaml-syntax", edit("prompt: Luna in a forest", "prompt: [Luna in a forest"),
     "11:1: YAML syntax error"),
    ("tab-indent", edit("  medium: illustration", "\tmedium: illustration"),
     "6:1: YAML syntax error"),
    ("two-documents", add("---\nversion: 1\n"),
     "11:1: YAML syntax error: the file holds several YAML documents (---)"),
    ("python-tag", add("    negative_prompt: !!python/name:os.system ''\n"),
     "11:22: scenes[0].negative_prompt: cannot read this value"),
    # files the pipeline names
    ("reference-missing", add("    reference: forrest.png\n"),
     "11:16: scenes[0].reference: `forrest.png` does not exist"),
    ("images-glob-empty", edit("images: [training/]", "images: ['training/*.jpg']"),
     "7:12: character.images[0]: `training/*.jpg` matches no file"),
    ("images-folder-missing", edit("images: [training/]", "images: [trainig/]"),
     "7:12: character.images[0]: `trainig` does not exist (did you mean `training`?)"),
    ("images-folder-empty", edit("images: [training/]", "images: [empty/]"),
     "7:12: character.images[0]: folder `empty/` holds no .jpg, .jpeg, .png or .webp file"),
    ("fibo-needs-5-images", edit("images: [training/]", "images: [training/a.png]"),
     "7:11: character.images: 1 training image; fibo needs at least 5"),
    ("guidance-image-missing",
     add("    guidance: [{method: controlnet_depth, image: depth.png}]\n" + LEGACY),
     "11:50: scenes[0].guidance[0].image: `depth.png` does not exist"),
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with fifteen distinct 1024 px training images (fibo's best-practice count:
    fewer is a warning), a scene image and an empty folder."""
    training = tmp_path / "training"
    training.mkdir()
    for src, name in zip(sorted((EXAMPLES / "training").glob("*.png"))[:6], "abcdef"):
        shutil.copy(src, training / f"{name}.png")
    for n in range(9):
        Image.new("RGB", (1024, 1024), (n * 25, 90, 160)).save(training / f"plain-{n}.png")
    shutil.copy(EXAMPLES / "scenes" / "forest.png", tmp_path / "scene.png")
    (tmp_path / "empty").mkdir()
    return tmp_path


def run_validate(path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["validate", str(path), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(("document", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_is_reported_at_its_position(project: Path, document: str,
                                               expected: str) -> None:
    path = project / "p.yaml"
    path.write_text(document)
    code, out, err = run_validate(path)
    assert code == 2
    assert out.startswith(f"{path}: invalid (") and " error" in out  # only the verdict
    lines = err.splitlines()
    assert any(line.startswith(f"{path}:{expected}") for line in lines), err
    assert "Traceback" not in err


def test_there_are_at_least_forty_cases() -> None:
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)


def test_the_base_document_is_valid(project: Path) -> None:
    (project / "p.yaml").write_text(BASE)
    code, out, err = run_validate(project / "p.yaml")
    assert (code, err) == (0, "")
    assert out == f"{project / 'p.yaml'}: valid (0 errors, 0 warnings)\n"


def test_every_problem_is_reported_at_once_sorted_by_position(project: Path) -> None:
    document = edit("name: demo", "name: Demo") + "    variations: 9\n    seed: -1\ncolour: x\n"
    (project / "p.yaml").write_text(document)
    code, out, err = run_validate(project / "p.yaml")
    where = [line.split(": ", 1)[0].split(":", 1)[1] for line in err.splitlines()]
    assert code == 2
    assert where == ["2:7", "11:17", "12:11", "13:1"]
    assert out.endswith(": invalid (4 errors, 0 warnings)\n")


def test_the_file_name_is_shown_as_given(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    Path("p.yaml").write_text(edit("version: 1", "version: 3"))
    code, _, err = run_validate(Path("p.yaml"))
    assert code == 2
    assert err.startswith("p.yaml:1:10: version: unsupported version 3")


def test_json_output_lists_problems_with_fields(project: Path) -> None:
    (project / "p.yaml").write_text(add("    variations: 9\n"))
    code, out, err = run_validate(project / "p.yaml", "--json")
    data = json.loads(out)
    assert (code, err, data["valid"]) == (2, "", False)
    assert data["problems"] == [{"file": str(project / "p.yaml"), "line": 11, "col": 17,
                                 "path": "scenes[0].variations",
                                 "message": "9 is above the maximum 4", "hint": None,
                                 "severity": "error"}]


def test_json_output_of_a_valid_file_carries_warnings(project: Path) -> None:
    (project / "p.yaml").write_text(add(LEGACY))
    code, out, _ = run_validate(project / "p.yaml", "--json")
    data = json.loads(out)
    assert (code, data["valid"]) == (0, True)
    assert [(p["severity"], p["path"]) for p in data["problems"]] == [
        ("warning", "training.version")]


def test_warnings_alone_do_not_fail(project: Path) -> None:
    (project / "p.yaml").write_text(add(LEGACY))
    code, out, err = run_validate(project / "p.yaml")
    assert code == 0
    assert out.endswith(": valid (0 errors, 1 warning)\n")
    assert err == (f"{project / 'p.yaml'}:11:21: warning: training.version: light is a legacy "
                   "model: Bria ended legacy model support on 2026-07-01 and no longer lists "
                   "its routes (train new characters on fibo with `version: fibo`; this file "
                   "runs only while your Bria account still serves the legacy routes)\n")


def test_missing_file(tmp_path: Path) -> None:
    code, _, err = run_validate(tmp_path / "nope.yaml")
    assert (code, err) == (2, f"{tmp_path / 'nope.yaml'}:1:1: no such file\n")


def test_errors_come_before_warnings_with_a_count_and_quiet_hides_warnings(
    project: Path,
) -> None:
    # A legacy version (a warning, line 8) before a missing reference (an error, line 12).
    (project / "p.yaml").write_text(BASE.replace("scenes:\n", LEGACY + "scenes:\n").replace(
        "    prompt: Luna in a forest\n", "    prompt: Luna in a forest\n    reference: gone.png\n"))
    code, out, err = run_validate(project / "p.yaml")
    lines = err.splitlines()
    assert code == 2 and len(lines) == 2
    assert "warning" not in lines[0] and "warning" in lines[1]
    assert out.endswith(": invalid (1 error, 1 warning)\n")
    code, out, quiet = run_validate(project / "p.yaml", "--quiet")
    assert code == 2 and "warning:" not in quiet
    assert out.endswith("(1 error, 1 warning; warnings hidden by --quiet)\n")


def test_schema_errors_and_file_checks_come_in_one_round(project: Path) -> None:
    # A four-word name (schema) and a bad variations count (schema) touch nothing the file
    # checks read: the missing reference and the short training set are reported with them.
    (project / "p.yaml").write_text(
        edit("name: Luna", "name: Luna the Great Explorer")
        .replace("images: [training/]", "images: ['training/[a-c].png', training/d.png]")
        + "    reference: gone.png\n    variations: 9\n")
    code, out, err = run_validate(project / "p.yaml")
    lines = err.splitlines()
    assert code == 2
    assert [line.split(": ")[1] for line in lines] == [
        "character.name", "character.images", "scenes[0].reference", "scenes[0].variations"]
    assert "4 training images; fibo needs at least 5" in lines[1]
    assert "`gone.png` does not exist" in lines[2]
    assert out.endswith(": invalid (4 errors, 0 warnings)\n")


def test_file_warnings_join_schema_errors_after_them_and_quiet_hides_them(project: Path) -> None:
    (project / "p.yaml").write_text(edit("medium: illustration", "medium: drawing").replace(
        "images: [training/]", "images: ['training/plain-*.png']"))  # 9 images: a warning
    code, out, err = run_validate(project / "p.yaml")
    lines = err.splitlines()
    assert code == 2 and len(lines) == 2
    assert ": character.medium: `drawing`" in lines[0]
    assert ": warning: character.images: 9 training images" in lines[1]
    assert out.endswith(": invalid (1 error, 1 warning)\n")
    code, out, err = run_validate(project / "p.yaml", "--quiet")
    assert code == 2 and len(err.splitlines()) == 1 and ": warning:" not in err
    assert out.endswith("(1 error, 1 warning; warnings hidden by --quiet)\n")


THREE = edit("images: [training/]", "images: ['training/[a-c].png']")  # fibo needs 5


@pytest.mark.parametrize(("document", "where"), [
    (THREE + "    reference: 42\n", "scenes[0].reference"),
    (THREE.replace("[a-c].png']", "[a-c].png', 7]"), "character.images[1]"),
    (THREE.replace("  images:", "  identity_samples: many\n  images:"),
     "character.identity_samples"),
    (THREE.replace("  - name: forest\n    prompt: Luna in a forest\n", "  - 3\n"), "scenes[0]"),
    (THREE.replace("name: demo\n", ""), "name"),  # the default outputs folder is named by it
    (THREE + "outputs: [x]\n", "outputs"),
    (THREE.replace("character:\n", "training: fibo\ncharacter:\n"), "training"),
], ids=["reference", "image-entry", "identity-samples", "scene", "name", "outputs", "training"])
def test_an_error_in_what_the_file_checks_read_leaves_them_for_the_next_round(
    project: Path, document: str, where: str,
) -> None:
    (project / "p.yaml").write_text(document)
    code, _, err = run_validate(project / "p.yaml")
    assert code == 2
    assert any(f": {where}: " in line for line in err.splitlines()), err
    assert "training image" not in err, err
    (project / "p.yaml").write_text(THREE)  # the checks do find it once nothing is in the way
    assert "3 training images; fibo needs at least 5" in run_validate(project / "p.yaml")[2]


def test_run_still_refuses_a_file_with_schema_errors_naming_all_its_problems(
    project: Path,
) -> None:
    (project / "p.yaml").write_text(edit("medium: illustration", "medium: drawing")
                                    + "    reference: gone.png\n")
    result = CliRunner().invoke(main, ["run", str(project / "p.yaml"), "--simulate"])
    assert result.exit_code == 2
    assert "character.medium" in result.stderr and "`gone.png` does not exist" in result.stderr
    assert not (project / "state").exists()


@pytest.mark.parametrize(("command"), [["validate"], ["schema"], []], ids=["validate", "schema",
                                                                           "main"])
def test_commands_have_help(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.stdout
