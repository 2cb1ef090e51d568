"""B1: peak memory of `bria-run validate` with a 9,400 px image of each format (issue 15).

Each image is a scene reference of an otherwise small pipeline; `validate` runs in a fresh
process and its ``ru_maxrss`` is the figure. The baseline is the same image decoded whole by
Pillow (``Image.open(...).load()``, what validation did for WEBP and JPEG before), in its
own fresh process.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from tests.benchmarks.fixtures import small_image
from tests.benchmarks.peak import peak_mb
from tests.benchmarks.table import Outcome, Row

GOAL_MB = 150.0
SIDE, SMOKE_SIDE = 9400, 1200
FORMATS: dict[str, tuple[str, dict[str, Any]]] = {
    "PNG": ("png", {}),
    "JPEG": ("jpg", {"quality": 85}),
    "progressive JPEG": ("jpg", {"quality": 85, "progressive": True}),
    "WEBP": ("webp", {"quality": 60}),
}


def big_images(folder: Path, side: int) -> dict[str, Path]:
    """One ``side`` px image per format, well under 12 MB (smooth, with a few shapes)."""
    gradient = Image.linear_gradient("L").resize((side, side))
    image = Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.ROTATE_90),
                                gradient))
    draw = ImageDraw.Draw(image)
    for x in range(0, side, max(1, side // 20)):
        draw.ellipse([x, x, x + side // 25, x + side // 25], fill=(230, 40, 40))
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (suffix, options) in FORMATS.items():
        path = folder / f"{name.replace(' ', '-')}.{suffix}"
        image.save(path, "JPEG" if suffix == "jpg" else suffix.upper(), **options)
        paths[name] = path
    return paths


def validate_pipeline(folder: Path, reference: Path) -> Path:
    """A small valid pipeline whose one scene's reference is ``reference``."""
    for i in range(5):
        small_image(folder / "training" / f"{i}.png", i, size=300)
    path = folder / f"{reference.stem}.yaml"
    path.write_text(
        "version: 1\nname: hostile\ncharacter:\n  name: Luna\n"
        "  description: girl with blue hair\n  medium: illustration\n"
        "  images: [training/]\n"
        f"scenes:\n  - name: big\n    prompt: Luna\n    reference: {reference}\n")
    return path


def validate_peak(folder: Path, reference: Path) -> tuple[float, int, str]:
    return peak_mb(["runner", "validate", str(validate_pipeline(folder, reference))])


def _decode_peak(image: Path) -> float:
    code = ("from PIL import Image\nImage.MAX_IMAGE_PIXELS = None\n"
            f"Image.open({str(image)!r}).load()\n")
    return peak_mb(["--code", code])[0]


def run_b1(smoke: bool) -> Outcome:
    side = SMOKE_SIDE if smoke else SIDE
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-b1-") as tmp:
        for name, image in big_images(Path(tmp) / "images", side).items():
            mb, code, err = validate_peak(Path(tmp), image)
            if code != 0:
                raise RuntimeError(f"validate refused the {name} image: {err}")
            rows.append(Row(f"B1 validate peak RSS, {side} px {name}", mb, "MB",
                            baseline=_decode_peak(image), goal=f"< {GOAL_MB:g} MB",
                            met=mb < GOAL_MB,
                            notes=f"{image.stat().st_size / 1e6:.1f} MB file as a scene "
                                  "reference; baseline: Pillow decoding it whole"))
    detail = ("B1: peak RSS (VmHWM) of a fresh `bria-run validate` process; PNG is verified chunk by "
              "chunk, baseline JPEG decoded at 1/8 scale, WEBP and progressive JPEG above "
              "12 million pixels checked by structure only (RIFF sizes, end-of-image marker).")
    return Outcome(tuple(rows), (detail,))
