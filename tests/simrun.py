"""Test support: a simulator on loopback, small pipelines in tmp_path, bria-run as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parent.parent
TOKEN = "test-token-1234"


def make_image(path: Path, index: int, size: int = 320) -> Path:
    """A small, distinct, valid PNG: a figure whose pose depends on ``index``."""
    image = Image.new("RGB", (size, size), (40 + index * 20 % 200, 60, 120))
    draw = ImageDraw.Draw(image)
    x = 40 + (index * 37) % (size - 120)
    draw.ellipse([x, 60, x + 80, 140], fill=(250, 220, 190))
    draw.rectangle([x + 10, 140, x + 70, 260], fill=(60, 120, 230))
    draw.text((10, 10), f"luna {index}", fill=(255, 255, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)
    return path


def write_pipeline(
    folder: Path,
    *,
    name: str = "luna",
    version: str = "fibo",
    images: int = 5,
    scenes: list[dict[str, Any]] | None = None,
    model_id: int | None = None,
    concurrency: int = 4,
    extra_character: str = "",
) -> Path:
    """A valid pipeline file with its images, small enough for fast end-to-end tests."""
    for i in range(images):
        make_image(folder / "training" / f"{i:02d}.png", i)
    make_image(folder / "scenes" / "forest.png", 99, size=400)
    if scenes is None:
        forest = {"name": "forest", "reference": "scenes/forest.png", "prompt": "Luna in a forest"}
        if version != "fibo":  # fibo takes no structure strength (validation refuses it)
            forest["structure_strength"] = 0.6
        scenes = [forest, {"name": "reading", "prompt": "Luna reading by the fire",
                           "variations": 2}]
    training = f"  version: {version}\n  poll_every: 1s\n"
    if model_id is not None:
        training += f"  model_id: {model_id}\n"
    text = (
        "version: 1\n"
        f"name: {name}\n"
        "character:\n"
        "  name: Luna\n"
        "  description: girl with blue hair\n"
        "  type: defined_character\n"
        "  medium: illustration\n"
        "  images: [training/*.png]\n"
        f"{extra_character}"
        f"training:\n{training}"
        f"generation:\n  concurrency: {concurrency}\n"
        f"scenes: {json.dumps(scenes)}\n"
        "outputs: outputs\n"
    )
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def env_for(base_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIA_", "COV"))}
    env.update(BRIA_API_URL=base_url, BRIA_API_TOKEN=TOKEN, BRIA_RUN_JOB_POLL="0.1",
               PYTHONPATH=str(REPO))
    env.update(extra)
    return env


def bria(args: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 120,
         ) -> subprocess.CompletedProcess[str]:
    """Run bria-run as a separate process (so it can be killed like a real one)."""
    return subprocess.run([sys.executable, "-m", "runner", *args], env=env, cwd=cwd, check=False,
                          capture_output=True, text=True, timeout=timeout)


def spawn(args: list[str], *, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "runner", *args], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def sim_stats(base_url: str) -> dict[str, Any]:
    return httpx.get(f"{base_url}/__sim/stats", timeout=10).json()


def posts(stats: dict[str, Any]) -> dict[str, int]:
    """The POST calls the simulator answered, by endpoint (rate-limited ones included)."""
    return {k: v for k, v in stats["calls"].items() if k.startswith("POST ") and v}
