"""G1: the gallery of 2,000 images: time to write the page and its thumbnails (cold, then
re-rendered with every thumbnail already made), and what headless Chromium transfers when
the page first opens from file:// (lazy thumbnails; no full-size image until clicked).

The state is written through the real store (steps and artifacts as a finished run leaves
them). The images are 1024 px PNGs drawn by the simulator's renderer; each copy differs
by a text chunk, so each has its own sha256 and is decoded in full like a distinct one.
"""

from __future__ import annotations

import struct
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from runner.display.gallery import write_gallery
from runner.engine.outputs import output_path
from runner.engine.plan import plan
from runner.pipeline.loader import load_pipeline
from runner.simulator.render import RenderSpec, render
from runner.state.fingerprint import sha256_file
from runner.state.rows import ApiIdentity
from runner.state.store import Store
from tests.benchmarks.fixtures import small_image, text_scenes, write_pipeline
from tests.benchmarks.table import Outcome, Row

VARIATIONS = 2
VIEWPORT = {"width": 1280, "height": 900}
GOAL_OPEN = 1.0  # seconds from navigation to the load event
_VISIBLE = ("Array.from(document.images).filter(i => { const r = i.getBoundingClientRect();"
            " return r.bottom > 0 && r.top < innerHeight; })")
_IN_VIEW = f"{_VISIBLE}.length"
_IN_VIEW_LOADED = f"{_VISIBLE}.every(i => i.complete && i.naturalWidth > 0)"


def _picture(character: Path) -> bytes:
    """A 1024 px result as the simulator draws one (a scene with the character in it)."""
    return render(RenderSpec(1024, 1024, 42, "Luna on a beach", (character.read_bytes(),)))


def _copy(data: bytes, path: Path, index: int) -> None:
    """``data`` with a text chunk after the header: distinct bytes, the same pixels."""
    body = b"tEXt" + b"Comment\0" + f"bench image {index}".encode()
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[:33] + chunk + data[33:])


def _finished_state(root: Path, images: int) -> Path:
    """A pipeline of ``images / VARIATIONS`` scenes whose every image is done."""
    for i in range(10):
        small_image(root / "training" / f"{i:02d}.png", i)
    path = write_pipeline(root, text_scenes(images // VARIATIONS, variations=VARIATIONS))
    pipeline, _ = load_pipeline(path)
    picture = _picture(root / "training" / "01.png")
    with Store.open(root / "state.sqlite", ApiIdentity("real", "bench")) as store:
        the_plan = plan(pipeline, store.load(), pipeline.image_hashes)
        for n, step in enumerate(the_plan.steps):
            row = store.begin_step(step.key, step.kind, step.fingerprint, is_new=True)
            if step.kind != "scene":
                store.finish_step(row.id, remote_id="4001", outputs={"status": "Completed"})
                continue
            file = output_path(pipeline.outputs, step.scene or "", step.variation or 1)
            _copy(picture, file, n)
            store.finish_step(row.id, outputs={"inputs": step.inputs}, artifact={
                "scene": step.scene, "variation": step.variation, "path": str(file),
                "sha256": sha256_file(file), "seed": step.seed, "source": None,
                "bytes": file.stat().st_size})
    return path


def _write(path: Path) -> tuple[float, Path]:
    pipeline, _ = load_pipeline(path)
    with Store.open(path.parent / "state.sqlite", None) as store:
        began = time.perf_counter()
        recorded = store.load()
        the_plan = plan(pipeline, recorded, pipeline.image_hashes)
        page = write_gallery(pipeline, the_plan, recorded, retry="bria-run bench.yaml")
        return time.perf_counter() - began, page


def _first_open(page_file: Path) -> dict[str, Any]:
    """Open the page in headless Chromium; what it asked for before it settled."""
    from tests.galleryrun import chromium

    with chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT)
        asked: list[str] = []
        context.on("request", lambda request: asked.append(request.url))
        page = context.new_page()
        began = time.perf_counter()
        page.goto(page_file.as_uri(), wait_until="load")
        opened = time.perf_counter() - began
        # Lazy thumbnails near the viewport are asked for after the load event: wait until
        # every image in view has arrived and nothing more is asked for.
        page.wait_for_function(_IN_VIEW_LOADED)
        page.wait_for_load_state("networkidle")
        images = page.locator("img").count()
        in_view = page.evaluate(_IN_VIEW)
    files = [Path(url.removeprefix("file://")) for url in asked if url.startswith("file://")]
    return {"seconds": opened, "requests": len(asked), "images": images, "in_view": in_view,
            "bytes": sum(f.stat().st_size for f in files if f.is_file()),
            "full_size": sum(1 for f in files if f.suffix == ".png")}


def run_g1(smoke: bool) -> Outcome:
    images = 40 if smoke else 2000
    with tempfile.TemporaryDirectory(prefix="bench-s6-") as tmp:
        path = _finished_state(Path(tmp), images)
        cold, page = _write(path)
        warm, _ = _write(path)
        outputs = page.parent
        thumbs = sum(f.stat().st_size for f in (outputs / ".thumbs").iterdir())
        full = sum(f.stat().st_size for f in outputs.rglob("*.png"))
        html, data = page.stat().st_size, (outputs / "index.json").stat().st_size
        opened = _first_open(page)
    every = html + thumbs
    rows = (
        Row(f"G1 gallery of {images} images: page + thumbnails", cold, "s",
            notes=f"1024 px PNGs to 384 px WEBP, {images} thumbnails made + 10 training ones; "
                  f"index.html {html / 1024:.0f} KB, index.json {data / 1024:.0f} KB"),
        Row(f"G1 gallery of {images} images: page again, thumbnails reused", warm, "s",
            notes="after a run: state read, plan, page and index.json rewritten"),
        Row("G1 gallery first open: bytes transferred", opened["bytes"] / 1e6, "MB",
            baseline=every / 1e6,
            notes=f"{opened['requests']} requests ({opened['in_view']} thumbnails in view, "
                  f"page {html / 1024:.0f} KB) for {opened['images']} images in a "
                  f"{VIEWPORT['width']}x{VIEWPORT['height']} Chromium window; "
                  f"{opened['full_size']} full-size images; baseline: every thumbnail at once "
                  f"(full-size images: {full / 1e6:.0f} MB)"),
        Row("G1 gallery first open: navigation to load event", opened["seconds"], "s",
            goal=f"< {GOAL_OPEN:g} s", met=opened["seconds"] < GOAL_OPEN,
            notes="headless Chromium from file://"),
    )
    detail = ("G1: thumbnails are made in worker processes (spawned, one per core up to 4) "
              "and named by sha256 under <outputs>/.thumbs; bytes transferred = the sizes of "
              "the files Chromium requested.")
    return Outcome(rows, (detail,))
