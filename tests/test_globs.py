"""Image globs stay inside the project root, stop after a bounded number of entries, and never
follow a symlink loop; a single named file outside the root still works."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from runner.cli import main
from runner.pipeline import globs
from runner.pipeline.globs import GlobTooWide, expand, reach_problem

DOC = """\
version: 1
name: demo
character:
  name: Luna
  description: girl with blue hair
  medium: illustration
  images: {images}
scenes:
  - name: forest
    prompt: Luna in a forest
"""


def picture(path: Path, shade: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (300, 300), (shade, 90, 160))
    image.save(path)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """tmp/proj (a git checkout: the project root) with 5 images; tmp/outside with one more."""
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    for i in range(5):
        picture(root / "training" / f"{i}.png", i * 40)
    picture(tmp_path / "outside" / "extra.png", 250)
    return root


def validate(root: Path, images: str) -> tuple[int, list[str]]:
    path = root / "p.yaml"
    path.write_text(DOC.format(images=images))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.exit_code, [line.removeprefix(f"{path}:") for line in result.stderr.splitlines()]


@pytest.mark.parametrize(("images", "searches"), [
    ("'/**/*.png'", "/"),
    ("'../../../**/*.png'", None),
    ("'../outside/*.png'", "outside"),
], ids=["rooted-at-slash", "dotdot", "sibling-folder"])
def test_a_glob_reaching_above_the_root_is_refused(project: Path, images: str,
                                                   searches: str | None) -> None:
    code, lines = validate(project, images)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("7:11: character.images: `"), lines
    assert f"outside the project root `{project}`; a glob must stay inside it" in lines[0]
    if searches == "/":
        assert "searches `/`," in lines[0]


def test_the_refusal_comes_with_the_schema_problems_before_any_listing(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_listing(path: object) -> None:
        raise AssertionError(f"listed {path}")

    monkeypatch.setattr(os, "scandir", no_listing)
    path = project / "p.yaml"
    path.write_text(DOC.format(images="['/**/*.png']").replace("demo", "Demo"))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    assert [line.split(": ")[1] for line in result.stderr.splitlines()] == [
        "name", "character.images[0]"]


def test_dotdot_after_a_wildcard_is_refused(project: Path) -> None:
    code, lines = validate(project, "['training/*/../../../x/*.png']")
    assert code == 2
    assert lines == [("7:12: character.images[0]: `training/*/../../../x/*.png` has `..` after "
                     "a wildcard; name the folder before the wildcard (name the files or "
                     "folder outside the project root one by one, or move them inside it)")]


def test_globs_inside_the_root_work_relative_or_absolute(project: Path) -> None:
    assert validate(project, "['training/*.png']")[0] == 0
    assert validate(project, f"['{project}/training/**/*.png']")[0] == 0
    assert validate(project, "['sub/../training/*.png']")[0] == 0


def test_a_single_named_file_outside_the_root_may_be_used(project: Path) -> None:
    code, lines = validate(project, "['training/*.png', '../outside/extra.png']")
    assert code == 0
    assert [line for line in lines if "warning" not in line] == []


def test_double_star_never_follows_a_symlink_loop(project: Path) -> None:
    (project / "training" / "again").symlink_to(project / "training")
    (project / "training" / "deep" / "er").mkdir(parents=True)
    picture(project / "training" / "deep" / "er" / "5.png", 200)
    found = expand("training/**/*.png", project)
    assert [p.relative_to(project).as_posix() for p in found] == [
        "training/0.png", "training/1.png", "training/2.png", "training/3.png",
        "training/4.png", "training/deep/er/5.png"]


def test_expansion_stops_after_the_documented_number_of_entries(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(30):
        (project / "training" / f"note{i}.txt").write_text("x")
    with pytest.raises(GlobTooWide):
        expand("training/**", project, limit=20)
    monkeypatch.setattr(globs, "MAX_ENTRIES", 20)
    code, lines = validate(project, "['training/*.png']")
    assert code == 2
    assert lines == [("7:12: character.images[0]: `training/*.png` looks at more than 20 "
                     "entries; stopped there (name the folder of the images, or a narrower glob "
                     "such as `training/*.png`)")]


def test_a_folder_listing_is_bounded_too(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(globs, "MAX_ENTRIES", 3)
    code, lines = validate(project, "['training/']")
    assert code == 2 and "looks at more than 3 entries" in lines[0]


def test_hidden_names_and_case_follow_glob(project: Path) -> None:
    picture(project / "training" / ".hidden.png", 10)
    picture(project / "training" / "UPPER.PNG", 20)
    names = [p.name for p in expand("training/*.png", project)]
    assert names == ["0.png", "1.png", "2.png", "3.png", "4.png"]
    assert [p.name for p in expand("training/.*.png", project)] == [".hidden.png"]


def test_reach_is_judged_from_the_text(tmp_path: Path) -> None:
    root = tmp_path
    assert reach_problem("a/*.png", root, root) is None
    assert reach_problem("*.png", root, root) is None
    assert reach_problem("a/../../*.png", root, root) is not None
