"""``python -m tests.gallery_screenshot [OUT]``: the Luna demo's gallery as a PNG
(default docs/gallery.png, the README's picture).

Runs a copy of pipelines/luna.yaml against the simulator in this process, rewords the
forest prompt and runs again (so an earlier version shows beside the new one), then takes
the screenshot in headless Chromium, the browser the tests use (tests/test_gallery_browser.py
runs this same code).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from runner.simulator import SimConfig, Simulator
from tests.galleryrun import chromium, load_every_image, run_here

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "gallery.png"
FOREST = "Luna exploring the magical forest, looking curious"
FOREST_EDITED = "Luna exploring the magical forest at dusk, holding a lantern"


def luna_gallery(folder: Path) -> Path:
    """The Luna demo run twice (the second time with the forest prompt edited) in
    ``folder``; the page's path."""
    shutil.copytree(REPO / "pipelines", folder / "pipelines",
                    ignore=shutil.ignore_patterns("outputs"))
    path = folder / "pipelines" / "luna.yaml"
    config = SimConfig(token="sim-token", training_seconds=0.3, generation_seconds=0.05)
    with Simulator(config) as sim, pytest.MonkeyPatch.context() as env:
        run_here(path, sim, env)
        text = path.read_text()
        assert FOREST in text, f"{path} no longer has the forest prompt {FOREST!r}"
        path.write_text(text.replace(FOREST, FOREST_EDITED))
        run_here(path, sim, env)
    return folder / "pipelines" / "outputs" / "luna" / "index.html"


def screenshot(browser: Any, page_file: Path, out: Path, *, width: int = 1280,
               scheme: str = "light") -> None:
    """A full-page PNG of ``page_file`` as a laptop shows it."""
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page.goto(page_file.as_uri())
    load_every_image(page)
    out.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out), full_page=True)
    page.close()


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else OUT
    with tempfile.TemporaryDirectory() as folder, chromium() as browser:
        screenshot(browser, luna_gallery(Path(folder)), out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
