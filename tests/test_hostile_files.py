"""Only regular image files, bounded work: FIFOs, devices, sockets and folders are refused by
`validate` from os.stat (never opened, so nothing hangs); decompression bombs are refused from
their header; large images are checked without their full decoded pixels."""

from __future__ import annotations

import os
import socket
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from runner.cli import main
from runner.pipeline import images
from runner.pipeline.images import ImageRejected, inspect_image

DOC = """\
version: 1
name: demo
character:
  name: Luna
  description: girl with blue hair
  medium: illustration
  images: ['imgs/*.png']
scenes:
  - name: forest
    reference: ref.png
    prompt: Luna in a forest
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "imgs").mkdir()
    for i in range(5):
        Image.new("RGB", (1024, 1024), (i * 40, 100, 200)).save(tmp_path / "imgs" / f"{i}.png")
    Image.new("RGB", (512, 512), (250, 0, 0)).save(tmp_path / "ref.png")
    return tmp_path


def validate(project: Path) -> tuple[int, list[str]]:
    path = project / "p.yaml"
    path.write_text(DOC)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line.removeprefix(f"{path}:") for line in result.stderr.splitlines()]
    # The errors, without the warnings and the closing count (" invalid: 1 error, ...").
    return result.exit_code, [line for line in lines
                              if ": warning: " not in line and not line.startswith(" invalid: ")]


@pytest.fixture
def unix_socket(project: Path) -> Iterator[Path]:
    path = project / "imgs" / "s.png"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        yield path


def test_a_fifo_is_refused_without_being_opened(project: Path) -> None:
    os.mkfifo(project / "imgs" / "f.png")  # opening it to read would block forever
    code, lines = validate(project)
    assert code == 2
    assert lines == [("7:12: character.images[0]: `imgs/f.png` is a named pipe (FIFO), not an "
                     "image file (name regular image files only)")]


def test_a_symlink_to_dev_zero_is_refused(project: Path) -> None:
    (project / "imgs" / "z.png").symlink_to("/dev/zero")
    code, lines = validate(project)
    assert code == 2
    assert lines == [("7:12: character.images[0]: `imgs/z.png` is a character device (a symbolic "
                     "link to `/dev/zero`), not an image file (name regular image files only)")]


def test_a_socket_is_refused(project: Path, unix_socket: Path) -> None:
    code, lines = validate(project)
    assert code == 2
    assert lines[0].startswith("7:12: character.images[0]: `imgs/s.png` is a socket, not an image")


def test_a_folder_as_a_reference_is_refused(project: Path) -> None:
    (project / "ref.png").unlink()
    (project / "ref.png").mkdir()
    code, lines = validate(project)
    assert code == 2
    assert lines == [("10:16: scenes[0].reference: `ref.png` is a folder, not an image file "
                     "(name regular image files only)")]


def test_a_broken_symlink_is_named(project: Path) -> None:
    (project / "imgs" / "gone.png").symlink_to(project / "nowhere.png")
    code, lines = validate(project)
    assert code == 2
    assert lines == ["7:12: character.images[0]: `imgs/gone.png` is a broken symbolic link"]


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header declares ``width`` x ``height`` (a decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))


@pytest.mark.parametrize(("side", "message"), [
    (12_000, ("is 12000x12000 (144 million pixels); bria-run refuses images over 100 million "
             "pixels before decoding them (a decompression bomb?)")),
    (40_000, ("declares more than 100 million pixels; refused before decoding (a decompression "
             "bomb?)")),
], ids=["over-our-limit", "over-pillows-limit"])
def test_a_decompression_bomb_is_refused_by_its_dimensions(tmp_path: Path, side: int,
                                                           message: str) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_claiming(side, side))
    with pytest.raises(ImageRejected) as err:
        inspect_image(bomb)
    assert err.value.reason == message


def test_reading_is_bounded_before_decoding(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.png"
    Image.new("RGB", (300, 300)).save(path)
    monkeypatch.setattr(images, "MAX_BYTES", 100)
    with pytest.raises(ImageRejected, match="MB; Bria accepts at most 12 MB"):
        inspect_image(path)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_large_images_are_checked_without_a_full_decode(
        tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above DECODE_PIXELS a WEBP or a progressive JPEG is judged by its structure; a cut
    one is still refused."""
    monkeypatch.setattr(images, "DECODE_PIXELS", 100 * 100)
    whole = tmp_path / f"whole.{fmt.lower()}"
    Image.frombytes("RGB", (400, 400), os.urandom(400 * 400 * 3)).save(
        whole, fmt, progressive=True)
    assert inspect_image(whole).width == 400
    cut = tmp_path / f"cut.{fmt.lower()}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    with pytest.raises(ImageRejected, match="cannot be decoded"):
        inspect_image(cut)


@pytest.mark.slow
def test_validate_of_a_9400_px_webp_stays_under_150_mb(tmp_path: Path) -> None:
    """The case that took 1.4 GB: a fresh `bria-run validate` process, its own peak RSS."""
    from tests.benchmarks.hostile import validate_peak

    image = tmp_path / "big.webp"
    Image.new("RGB", (9400, 9400), (20, 90, 160)).save(image, "WEBP", quality=50)
    peak, code, err = validate_peak(tmp_path, image)
    assert code == 0, err
    assert peak < 150, f"peak RSS {peak} MB"
