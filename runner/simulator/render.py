"""Result images made from the inputs, with Pillow.

A scene reference gives the scene (fitted to the aspect ratio) with the character, cut
out of one of its training thumbnails, composited in; a text prompt gives the character
on a background derived from the prompt. Everything random comes from one generator
seeded by the seed and the inputs, so a result is the same bytes for the same request
and different for a different seed.
"""

from __future__ import annotations

import hashlib
import io
import random
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps


@dataclass(frozen=True)
class RenderSpec:
    width: int
    height: int
    seed: int
    prompt: str
    characters: tuple[bytes, ...]  # PNG thumbnails of the training images
    scene: bytes | None = None  # JPEG scene reference
    scene_influence: float = 1.0

    def key(self) -> str:
        digest = hashlib.sha256(f"{self.width}x{self.height}|{self.seed}|{self.prompt}".encode())
        for part in (*self.characters, self.scene or b"", str(self.scene_influence).encode()):
            digest.update(hashlib.sha256(part).digest())
        return digest.hexdigest()


def size_for(aspect_ratio: str, long_side: int) -> tuple[int, int]:
    wide, high = (int(x) for x in aspect_ratio.split(":"))
    if wide >= high:
        return long_side, max(1, round(long_side * high / wide))
    return max(1, round(long_side * wide / high)), long_side


def render(spec: RenderSpec) -> bytes:
    """The PNG bytes of one result (compress_level 1: speed matters more than size)."""
    rng = random.Random(spec.key())
    canvas = backdrop(spec, rng)
    if spec.scene is not None:
        canvas = with_scene(canvas, spec)
    if spec.characters:
        place_character(canvas, spec.characters[rng.randrange(len(spec.characters))], rng)
    out = io.BytesIO()
    canvas.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def backdrop(spec: RenderSpec, rng: random.Random) -> Image.Image:
    """A vertical gradient in the prompt's colour with a few seeded shapes."""
    base = hashlib.sha256(spec.prompt.encode()).digest()
    top = (base[0], base[1], base[2])
    bottom = tuple(c // 3 for c in top)
    ramp = Image.linear_gradient("L").resize((1, spec.height))
    canvas = Image.composite(Image.new("RGB", (1, spec.height), bottom),
                             Image.new("RGB", (1, spec.height), top), ramp)
    canvas = canvas.resize((spec.width, spec.height))
    draw = ImageDraw.Draw(canvas)
    for _ in range(rng.randint(5, 10)):
        x, y = rng.randrange(spec.width), rng.randrange(spec.height)
        r = rng.randint(spec.width // 30, spec.width // 8)
        colour = tuple(min(255, c + rng.randint(20, 90)) for c in top)
        shape = draw.ellipse if rng.random() < 0.6 else draw.rectangle
        shape((x - r, y - r, x + r, y + r), fill=colour)
    return canvas


def with_scene(canvas: Image.Image, spec: RenderSpec) -> Image.Image:
    assert spec.scene is not None
    with Image.open(io.BytesIO(spec.scene)) as scene:
        fitted = ImageOps.fit(scene.convert("RGB"), canvas.size)
    if spec.scene_influence >= 1.0:
        return fitted
    return Image.blend(canvas, fitted, max(0.0, spec.scene_influence))


def cut_out(thumbnail: bytes) -> Image.Image:
    """The character as RGBA: pixels unlike the thumbnail's corners (its background)."""
    with Image.open(io.BytesIO(thumbnail)) as opened:
        image = opened.convert("RGBA")
    rgb = image.convert("RGB")
    w, h = rgb.size
    corners: list[Any] = [rgb.getpixel(p) for p in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1))]
    ground = tuple(sum(int(c[i]) for c in corners) // 4 for i in range(3))
    difference = ImageChops.difference(rgb, Image.new("RGB", rgb.size, ground)).convert("L")
    mask = difference.point(lambda v: 255 if v > 24 else 0)
    covered = sum(mask.histogram()[255:]) / (w * h)
    if not 0.05 < covered < 0.95:  # no clear background: an oval vignette instead
        mask = Image.new("L", rgb.size, 0)
        ImageDraw.Draw(mask).ellipse((w // 10, h // 20, w - w // 10, h - h // 20), fill=255)
    alpha = ImageChops.multiply(mask.filter(ImageFilter.GaussianBlur(1)), image.getchannel("A"))
    image.putalpha(alpha)
    return image


def place_character(canvas: Image.Image, thumbnail: bytes, rng: random.Random) -> None:
    figure = cut_out(thumbnail)
    height = int(canvas.height * rng.uniform(0.35, 0.65))
    width = max(1, int(figure.width * height / max(1, figure.height)))
    figure = figure.resize((width, height))
    if rng.random() < 0.5:
        figure = ImageOps.mirror(figure)
    x = rng.randint(0, max(0, canvas.width - width))
    y = canvas.height - height - rng.randint(0, max(0, canvas.height // 10))
    canvas.paste(figure, (x, y), figure)


class ResultCache:
    """The last rendered results, so repeated downloads are byte-identical and cheap."""

    def __init__(self, size: int = 32) -> None:
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, spec: RenderSpec) -> bytes:
        key = spec.key()
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        data = render(spec)  # outside the lock: renders run in parallel
        with self._lock:
            self._items[key] = data
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return data
