"""Decoding and checking the images clients send, as Bria's upload endpoint does.

Only a small thumbnail of each accepted image is kept, so the simulator's memory does
not grow with the size of what it is sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from dataclasses import dataclass
from urllib.parse import urlsplit

from PIL import Image, UnidentifiedImageError

from runner.simulator.answers import SimError, field_error, message

MAX_BYTES = 12 * 1024 * 1024  # Bria's documented upload limit
MIN_SIDE = 256  # below this Bria refuses even with increase_resolution
STRICT_MIN_SIDE = 1024  # the minimum when increase_resolution is false
THUMB_SIDE = 256


@dataclass(frozen=True)
class Picture:
    """An accepted image: its format, size and a PNG thumbnail (long side <= 256 px)."""

    format: str  # "jpeg" | "png" | "webp"
    width: int
    height: int
    thumbnail: bytes


def sniff(data: bytes) -> str | None:
    """The format from the content, never from a name: Bria checks what it receives."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def decode_b64(text: object, field: str) -> bytes:
    if not isinstance(text, str):
        raise field_error(field, f"{field} must be a base64 string", None)
    if len(text) * 3 // 4 > MAX_BYTES + 3:  # refuse before decoding 12 MB+ of text
        raise message(413, "Payload too large: images must be at most 12 MB")
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise field_error(field, f"{field} is not valid base64", None) from None


def image_bytes(value: object, field: str) -> bytes:
    """An image a client sent: base64, or a URL for Bria to fetch."""
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        return fetched(value)
    return decode_b64(value, field)


def fetched(url: str) -> bytes:
    """What "downloading" ``url`` gives. Open point, decided here: the simulator has no
    network and never fetches; any URL stands for a picture drawn from the URL's text (the
    same URL, the same picture), except hosts under ``.invalid`` (RFC 2606), which answer
    Bria's 460 "could not download", so that failure can be tested too."""
    host = urlsplit(url).hostname or ""
    if not host or host == "invalid" or host.endswith(".invalid"):
        raise message(460, f"Failed to download image from {url}")
    digest = hashlib.sha256(url.encode()).digest()
    image = Image.new("RGB", (1024, 1024), (digest[0], digest[1], digest[2]))
    x = 200 + digest[3] % 500
    image.paste((250, 220, 190), (x, 300, x + 200, 500))
    image.paste((digest[4], 120, 230), (x + 20, 500, x + 180, 900))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def read_picture(data: bytes) -> Picture:
    """Check size and format, then open it; 413, 415 or 400 as Bria answers."""
    if len(data) > MAX_BYTES:
        raise message(413, "Payload too large: images must be at most 12 MB")
    kind = sniff(data)
    if kind is None:
        raise message(415, "Unsupported media type: use JPEG, PNG or WEBP")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            thumb = image.convert("RGBA")
            thumb.thumbnail((THUMB_SIDE, THUMB_SIDE))
    except (UnidentifiedImageError, OSError, ValueError):
        raise message(400, f"The {kind} image could not be read") from None
    out = io.BytesIO()
    thumb.save(out, format="PNG", compress_level=1)
    return Picture(kind, width, height, out.getvalue())


def check_resolution(picture: Picture, *, increase_resolution: bool) -> None:
    side = min(picture.width, picture.height)
    floor = MIN_SIDE if increase_resolution else STRICT_MIN_SIDE
    if side < floor:
        raise SimError(
            412,
            {
                "message": f"Image resolution too low: {picture.width}x{picture.height}; "
                f"the minimum is {floor}x{floor}"
                + ("" if increase_resolution else " when increase_resolution is false")
            },
        )
