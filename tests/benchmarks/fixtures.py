"""Input files for the scenarios: training images, scene references, pipeline files."""

from __future__ import annotations

import io
import json
import random
import struct
import zlib
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw


def small_image(path: Path, index: int, size: int = 320) -> Path:
    """A distinct, valid PNG of a few KB (content depends on ``index``)."""
    image = Image.new("RGB", (size, size), (40 + index * 7 % 200, 60 + index % 150, 120))
    draw = ImageDraw.Draw(image)
    x = 20 + (index * 37) % (size - 120)
    draw.ellipse([x, 60, x + 80, 140], fill=(250, 220, 190))
    draw.rectangle([x + 10, 140, x + 70, 260], fill=(60, 120, 230))
    draw.text((10, 10), f"bench {index}", fill=(255, 255, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def noise_pngs(folder: Path, count: int, megabytes: float) -> list[Path]:
    """``count`` distinct PNGs of about ``megabytes`` MB that do not compress.

    One random image is encoded once; each copy differs by a text chunk after the header,
    so every file has its own content hash at the cost of a file write."""
    side = int((megabytes * 1024 * 1024 / 3) ** 0.5)
    buffer = io.BytesIO()
    pixels = random.Random(0).randbytes(side * side * 3)
    Image.frombytes("RGB", (side, side), pixels).save(buffer, format="PNG", compress_level=0)
    data = buffer.getvalue()
    head, rest = data[:33], data[33:]  # signature (8) + IHDR chunk (25)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        body = b"tEXt" + b"Comment\0" + f"bench image {index}".encode()
        chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
        path = folder / f"{index:03d}.png"
        path.write_bytes(head + chunk + rest)
        paths.append(path)
    return paths


def text_scenes(count: int, *, variations: int = 1, prefix: str = "scene") -> list[dict[str, Any]]:
    return [{"name": f"{prefix}{i:05d}", "prompt": f"Luna in place number {i}",
             "variations": variations} for i in range(count)]


def write_pipeline(folder: Path, scenes: list[dict[str, Any]], *, concurrency: int | None = 4,
                   name: str = "bench", samples: int | None = None) -> Path:
    """A fibo pipeline over every image in ``folder/training`` (written by the caller);
    ``concurrency=None`` leaves it out (the default, auto)."""
    samples_line = f"  identity_samples: {samples}\n" if samples else ""
    text = (
        "version: 1\n"
        f"name: {name}\n"
        "character:\n"
        "  name: Luna\n"
        "  description: girl with blue hair\n"
        "  type: defined_character\n"
        "  medium: illustration\n"
        "  images: [training/]\n"
        "  identity: auto\n"
        f"{samples_line}"
        "training:\n"
        "  version: fibo\n"
        "  poll_every: 1s\n"
        + (f"generation:\n  concurrency: {concurrency}\n" if concurrency else "") +
        f"scenes: {json.dumps(scenes)}\n"
        "outputs: outputs\n"
    )
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path
