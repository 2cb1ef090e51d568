"""Check one image file the way Bria will judge it, before anything is uploaded.

Only regular files (after symlinks) are read: a FIFO, a device, a socket or a folder is
refused from ``os.stat`` without being opened. At most 12 MB is read; the format is
sniffed from the content (a GIF or a text file named .png is refused); the header's
dimensions are checked (a decompression bomb is refused before any decoding); then the
image is checked to decode (a truncated file fails here, not halfway through a run)
without ever holding its full decoded pixels, and its size and sha256 are measured. One
file is read at a time, so memory does not grow with the number of images.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_BYTES = 12 * 1024 * 1024  # Bria answers 413 above this
MIN_SIDE = 256  # Bria answers 412 below this
GOOD_SIDE = 1024  # below this Bria upscales (or refuses, with increase_resolution off)
ACCEPTED = ("JPEG", "PNG", "WEBP")
MAX_PIXELS = 100_000_000  # 10,000 x 10,000: above it, refused from the header alone
DECODE_PIXELS = 12_000_000  # full decodes (WEBP, progressive JPEG) only up to ~48 MB of RGBA
_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}

_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    format: str  # JPEG | PNG | WEBP
    width: int
    height: int
    size: int  # bytes
    sha256: str

    @property
    def short_side(self) -> int:
        return min(self.width, self.height)


class ImageRejected(Exception):
    """The file cannot be sent to Bria; ``reason`` says why in plain words."""

    def __init__(self, reason: str, hint: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.hint = reason, hint


def sniff(head: bytes) -> str | None:
    """The image format named by the first bytes, or None when it is not an image we know."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def inspect_image(path: Path) -> ImageInfo:
    """Measure ``path``; raise ``ImageRejected`` when Bria would refuse it."""
    size = _regular_size(path)
    if size > MAX_BYTES:
        raise ImageRejected(f"is {size / 1024 / 1024:.1f} MB; Bria accepts at most 12 MB",
                            "save it as JPEG or WEBP, or scale it down")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)  # bounded even if the file grew since stat
    except OSError as exc:
        raise ImageRejected(f"cannot be read: {exc.strerror or exc}") from exc
    if len(data) > MAX_BYTES:
        raise ImageRejected("grew past 12 MB while being read; Bria accepts at most 12 MB")
    kind = sniff(data[:16])
    if kind is None:
        raise ImageRejected("is not an image (content is neither JPEG, PNG nor WEBP)")
    if kind not in ACCEPTED:
        raise ImageRejected(f"is a {kind} image; Bria accepts JPEG, PNG and WEBP",
                            "convert it to PNG or JPEG")
    width, height = check_decodes(data)
    return ImageInfo(path, kind, width, height, len(data), hashlib.sha256(data).hexdigest())


def _regular_size(path: Path) -> int:
    """The size of ``path`` if it is a regular file after symlinks; judged by ``os.stat``,
    which never opens it (opening a FIFO blocks; reading /dev/zero never ends)."""
    try:
        found = os.stat(path)
    except FileNotFoundError as exc:
        what = "is a broken symbolic link" if path.is_symlink() else "does not exist"
        raise ImageRejected(what) from exc
    except OSError as exc:
        raise ImageRejected(f"cannot be read: {exc.strerror or exc}") from exc
    if stat.S_ISREG(found.st_mode):
        return found.st_size
    kind = _KINDS.get(stat.S_IFMT(found.st_mode), "not a regular file")
    via = f" (a symbolic link to `{os.path.realpath(path)}`)" if path.is_symlink() else ""
    raise ImageRejected(f"is {kind}{via}, not an image file",
                        "name regular image files only")


def check_decodes(data: bytes) -> tuple[int, int]:
    """Width and height of an accepted image, after checking it decodes, without ever holding
    its full decoded pixels: PNG is verified chunk by chunk (CRCs, no pixels), JPEG decoded at
    1/8 scale (``draft``), WEBP checked against its RIFF sizes and decoded only when small.
    An image declaring more than ``MAX_PIXELS`` is refused from its header, before decoding."""
    from PIL import Image  # imported here: only validation of image files needs Pillow

    try:
        with warnings.catch_warnings():
            # Our own pixel limit (below) decides; Pillow's warning would only duplicate it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                _plausible(width, height)
                if image.format == "PNG":
                    image.verify()
                elif image.format == "JPEG":
                    _check_jpeg(image, data)
                else:
                    _check_webp(image, data)
                return width, height
    except Image.DecompressionBombError as exc:
        raise ImageRejected(f"declares more than {MAX_PIXELS // 1_000_000} million pixels; "
                            "refused before decoding (a decompression bomb?)",
                            "scale it down") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageRejected(f"cannot be decoded ({_why(exc)}); is it truncated or damaged?",
                            "open it in an image editor and save it again") from exc


def _plausible(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise ValueError(f"its header says {width}x{height}")
    if width * height > MAX_PIXELS:
        raise ImageRejected(
            f"is {width}x{height} ({width * height / 1e6:.0f} million pixels); bria-run "
            f"refuses images over {MAX_PIXELS // 1_000_000} million pixels before decoding "
            "them (a decompression bomb?)", "scale it down")


def _check_jpeg(image: Any, data: bytes) -> None:
    width, height = image.size
    is_progressive = bool(image.info.get("progressive") or image.info.get("progression"))
    if is_progressive and width * height > DECODE_PIXELS:
        # A progressive JPEG keeps every DCT coefficient of the full image while decoding,
        # whatever the draft scale: decode only small ones; the others must end in EOI.
        if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
            raise ValueError("no end-of-image marker")
        return
    # Decode the whole stream at 1/8 scale: truncation still shows, pixels stay small.
    image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
    image.load()


def _check_webp(image: Any, data: bytes) -> None:
    declared = int.from_bytes(data[4:8], "little") + 8
    if len(data) < declared:
        raise ValueError(f"the file is {len(data)} bytes, its RIFF header says {declared}")
    width, height = image.size
    if width * height <= DECODE_PIXELS:  # Pillow decodes WEBP whole: only small ones
        image.load()


def _why(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:120]
