"""Checks on the image files a pipeline names: content, decoding, size, count, duplicates."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from runner.cli import main
from runner.pipeline import filechecks
from runner.pipeline.images import ImageRejected, inspect_image, sniff

DOC = """\
version: 1
name: demo
character:
  name: Luna
  description: girl with blue hair
  medium: illustration
  images: [imgs/]
{extra}scenes:
  - name: forest
    reference: ref.png
    prompt: Luna in a forest
"""
# errors about training images point at line 7 col 12 (the `imgs/` entry)


def picture(path: Path, size: tuple[int, int] = (1024, 1024), shade: int = 0,
            fmt: str = "PNG") -> Path:
    image = Image.new("RGB", size, (shade, 100, 200))
    image.putpixel((0, 0), (shade, shade, shade))
    image.save(path, fmt)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "imgs").mkdir()
    for i in range(15):  # fibo's best-practice count (fewer is a warning)
        picture(tmp_path / "imgs" / f"{i}.png", shade=i * 16)
    picture(tmp_path / "ref.png", shade=250)
    return tmp_path


def validate(project: Path, extra: str = "") -> tuple[int, list[str]]:
    path = project / "p.yaml"
    path.write_text(DOC.format(extra=extra))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    prefix = f"{path}:"
    return result.exit_code, [line.removeprefix(prefix) for line in result.stderr.splitlines()]


def test_valid_images_pass(project: Path) -> None:
    assert validate(project) == (0, [])


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: picture(p, fmt="GIF"), ("`imgs/x.png` is a GIF image; Bria accepts JPEG, PNG and "
                                      "WEBP (convert it to PNG or JPEG)")),
    (lambda p: p.write_text("hello, I am text"), ("`imgs/x.png` is not an image (content is "
                                                 "neither JPEG, PNG nor WEBP)")),
    (lambda p: p.write_bytes(picture(p, shade=3).read_bytes()[:2000]),
     "`imgs/x.png` cannot be decoded"),
    (lambda p: picture(p, (200, 1024)), ("`imgs/x.png` is 200x1024; Bria needs at least 256 px "
                                        "on the short side")),
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * (12 * 1024 * 1024 + 1)),
     "`imgs/x.png` is 12.0 MB; Bria accepts at most 12 MB"),
    (lambda p: p.write_bytes((p.parent / "0.png").read_bytes()),
     "`imgs/x.png` has the same content as `imgs/0.png`"),
], ids=["gif", "text-named-png", "truncated-png", "too-small", "over-12mb", "duplicate"])
def test_bad_training_image(project: Path, make: object, message: str) -> None:
    make(project / "imgs" / "x.png")  # type: ignore[operator]
    code, lines = validate(project)
    assert code == 2
    assert any(line.startswith(f"7:12: character.images[0]: {message}") for line in lines), lines


def test_under_1024_is_a_warning_that_bria_upscales(project: Path) -> None:
    picture(project / "imgs" / "0.png", (800, 1200))
    code, lines = validate(project)
    assert code == 0
    assert lines == [("7:11: warning: character.images: 1 of 15 training images are under "
                      "1024 px on the short side: `imgs/0.png` (800x1200); Bria will upscale "
                      "them (larger originals train better)")]


def test_images_under_1024_are_counted_in_one_line(project: Path) -> None:
    for i in range(5):
        picture(project / "imgs" / f"{i}.png", (600, 700 + i))
    code, lines = validate(project)
    assert code == 0
    assert lines == [("7:11: warning: character.images: 5 of 15 training images are under "
                      "1024 px on the short side: `imgs/0.png` (600x700), `imgs/1.png` "
                      "(600x701), `imgs/2.png` (600x702) and 2 more; Bria will upscale them "
                      "(larger originals train better)")]


@pytest.mark.parametrize(("version", "count", "advice"), [
    ("fibo", 14, "the user's guide finds 15-30 images optimal for most cases"),
    ("fibo", 31, "the user's guide finds 15-30 images optimal for most cases"),
    ("light", 14, "the user's guide advises 15-50 images for light"),
    ("light", 51, "the user's guide advises 15-50 images for light"),
    ("max", 4, "the user's guide advises 5-30 images for max"),
    ("max", 31, "the user's guide advises 5-30 images for max"),
], ids=["fibo-few", "fibo-many", "light-few", "light-many", "max-few", "max-many"])
def test_image_counts_outside_the_guides_advice_are_warnings(
    project: Path, version: str, count: int, advice: str
) -> None:
    for path in sorted((project / "imgs").iterdir())[count:]:
        path.unlink()
    for i in range(15, count):
        picture(project / "imgs" / f"{i}.png", shade=(i * 5) % 250, size=(1024, 1024 + i))
    code, lines = validate(project, f"training: {{version: {version}}}\n")
    assert code == 0
    assert f"7:11: warning: character.images: {count} training images; {advice} (a best " \
           "practice, not a rule)" in lines


@pytest.mark.parametrize(("version", "count"), [("fibo", 15), ("fibo", 30), ("light", 50),
                                                ("max", 5), ("max", 30)])
def test_image_counts_within_the_advice_are_quiet(project: Path, version: str,
                                                  count: int) -> None:
    for path in sorted((project / "imgs").iterdir())[count:]:
        path.unlink()
    for i in range(15, count):
        picture(project / "imgs" / f"{i}.png", shade=(i * 5) % 250, size=(1024, 1024 + i))
    code, lines = validate(project, f"training: {{version: {version}}}\n")
    assert code == 0
    assert not [line for line in lines if "training images;" in line]


def test_under_1024_is_an_error_without_increase_resolution(project: Path) -> None:
    picture(project / "imgs" / "0.png", (800, 1200))
    code, lines = validate(project, "  increase_resolution: false\n")
    assert code == 2
    assert lines[0].startswith("7:12: character.images[0]: `imgs/0.png` is 800x1200; with "
                               "increase_resolution off Bria needs at least 1024 px")


def test_reference_images_get_the_same_checks(project: Path) -> None:
    (project / "ref.png").write_text("not an image")
    code, lines = validate(project)
    assert code == 2
    assert lines[0].startswith("10:16: scenes[0].reference: `ref.png` is not an image")


def test_jpeg_and_webp_are_accepted_by_content(project: Path) -> None:
    picture(project / "imgs" / "0.png", fmt="JPEG", shade=11)  # a JPEG named .png is fine
    picture(project / "imgs" / "w.webp", fmt="WEBP", shade=99)
    assert validate(project) == (0, [])


def test_too_many_training_images(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filechecks, "MAX_TRAINING", 4)
    code, lines = validate(project)
    assert (code, lines[0]) == (2, ("7:11: character.images: 15 training images; Bria accepts "
                                   "at most 4"))


def test_folder_ignores_other_files_but_globs_check_them(project: Path) -> None:
    (project / "imgs" / "notes.txt").write_text("not an image")
    assert validate(project) == (0, [])
    doc = DOC.replace("[imgs/]", "['imgs/*']")
    (project / "p.yaml").write_text(doc.format(extra=""))
    result = CliRunner().invoke(main, ["validate", str(project / "p.yaml")])
    assert result.exit_code == 2
    assert "character.images[0]: `imgs/notes.txt` is not an image" in result.stderr


@pytest.mark.parametrize(("head", "kind"), [
    (b"\xff\xd8\xff\xe0", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"RIFF\0\0\0\0WEBPVP8 ", "WEBP"),
    (b"GIF89a", "GIF"), (b"hello", None)], ids=["jpeg", "png", "webp", "gif", "text"])
def test_sniff_by_content(head: bytes, kind: str | None) -> None:
    assert sniff(head) == kind


def test_inspect_measures_and_hashes(tmp_path: Path) -> None:
    path = picture(tmp_path / "a.png", (1024, 768))
    info = inspect_image(path)
    assert (info.format, info.width, info.height, info.short_side) == ("PNG", 1024, 768, 768)
    assert info.size == path.stat().st_size and len(info.sha256) == 64


def test_inspect_refuses_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ImageRejected, match="does not exist"):
        inspect_image(tmp_path / "gone.png")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_truncated_images_are_refused_in_every_format(tmp_path: Path, fmt: str) -> None:
    import os

    from PIL import Image

    from runner.pipeline.images import ImageRejected, inspect_image

    noise = Image.frombytes("RGB", (600, 600), os.urandom(600 * 600 * 3))
    whole = tmp_path / f"whole.{fmt.lower()}"
    noise.save(whole, fmt)
    assert inspect_image(whole).width == 600
    cut = tmp_path / f"cut.{fmt.lower()}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    with pytest.raises(ImageRejected, match="cannot be decoded"):
        inspect_image(cut)
