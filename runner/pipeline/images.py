"""Check one image file the way Bria will judge it, before anything is uploaded.

The format is sniffed from the content (a GIF or a text file named .png is refused),
the image is decoded fully (a truncated file fails here, not halfway through a run),
and its size and sha256 are measured. One file is read at a time, so memory does not
grow with the number of images.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 12 * 1024 * 1024  # Bria answers 413 above this
MIN_SIDE = 256  # Bria answers 412 below this
GOOD_SIDE = 1024  # below this Bria upscales (or refuses, with increase_resolution off)
ACCEPTED = ("JPEG", "PNG", "WEBP")

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
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ImageRejected(f"is {size / 1024 / 1024:.1f} MB; Bria accepts at most 12 MB",
                                "save it as JPEG or WEBP, or scale it down")
        data = path.read_bytes()
    except OSError as exc:
        raise ImageRejected(f"cannot be read: {exc.strerror or exc}") from exc
    kind = sniff(data[:16])
    if kind is None:
        raise ImageRejected("is not an image (content is neither JPEG, PNG nor WEBP)")
    if kind not in ACCEPTED:
        raise ImageRejected(f"is a {kind} image; Bria accepts JPEG, PNG and WEBP",
                            "convert it to PNG or JPEG")
    width, height = _decode(data)
    return ImageInfo(path, kind, width, height, len(data), hashlib.sha256(data).hexdigest())


def _decode(data: bytes) -> tuple[int, int]:
    from PIL import Image  # imported here: only validation of image files needs Pillow

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                size = image.size
                if image.format == "PNG":
                    # Every chunk and its CRC up to IEND, without holding the decoded pixels:
                    # a 12 MB PNG can decode to hundreds of MB.
                    image.verify()
                else:
                    if image.format == "JPEG":
                        # Decode the whole stream at 1/8 scale: truncation still shows.
                        image.draft("RGB", (max(1, size[0] // 8), max(1, size[1] // 8)))
                    image.load()
                return size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as exc:
        raise ImageRejected(f"cannot be decoded ({_why(exc)}); is it truncated or damaged?",
                            "open it in an image editor and save it again") from exc


def _why(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:120]
