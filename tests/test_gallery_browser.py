"""The gallery opened in a real headless Chromium from file://, as a person would: every
scene and variation is there, every thumbnail decodes, nothing is fetched from anywhere but
the outputs folder, markup from the file shows as text, an edit shows the earlier image
beside the new one, the keyboard moves between scenes, phone and dark mode work.

Needs Debian's chromium (/usr/bin/chromium) and Playwright's Python API (the test extra);
.ci/run installs chromium when it is missing. These tests fail, never skip, without them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from galleryrun import chromium, load_every_image, run_here, set_prompt
from simrun import TOKEN, write_pipeline

from runner.simulator import SimConfig, Simulator
from tests.gallery_screenshot import luna_gallery, screenshot

pytestmark = pytest.mark.slow

MARKUP = 'Luna <script>window.hacked = 1</script> <img src=x onerror="window.hacked=2">'
SCENES: list[dict[str, Any]] = [
    {"name": "forest", "reference": "scenes/forest.png", "prompt": "Luna in a forest"},
    {"name": "reading", "prompt": "Luna reading by the fire", "variations": 2, "seed": 7},
    {"name": "markup", "prompt": MARKUP},
]


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A gallery after a run and an edit of the reading prompt; the page's path."""
    folder = tmp_path_factory.mktemp("gallery")
    path = write_pipeline(folder, scenes=SCENES)
    with Simulator(SimConfig(token=TOKEN, training_seconds=0.2, generation_seconds=0.05)) as sim, \
            pytest.MonkeyPatch.context() as env:
        run_here(path, sim, env)
        set_prompt(path, "reading", "Luna reading in the rain")
        run_here(path, sim, env)
    yield folder / "outputs" / "index.html"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as opened:
        yield opened


def open_page(browser: Any, page_file: Path, **options: Any) -> tuple[Any, list[str]]:
    """The page opened from file://; every URL it asked for (anything not file:// is
    refused, so a page that tried to reach a network would show it here)."""
    context = browser.new_context(**options)
    requested: list[str] = []

    def watch(route: Any) -> None:
        requested.append(route.request.url)
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", watch)
    page = context.new_page()
    page.on("dialog", lambda dialog: requested.append(f"dialog:{dialog.message}"))
    page.goto(page_file.as_uri())
    page.wait_for_load_state("load")
    return page, requested


def index_of(page_file: Path) -> dict[str, Any]:
    return json.loads(page_file.with_name("index.json").read_text())


def test_every_scene_and_variation_is_on_the_page(browser: Any, gallery: Path) -> None:
    page, _ = open_page(browser, gallery)
    data = index_of(gallery)
    scenes = page.eval_on_selector_all("[data-scene]", "els => els.map(e => e.dataset.scene)")
    assert scenes == [s["name"] for s in data["scenes"]] == ["forest", "reading", "markup"]
    shown = page.eval_on_selector_all(
        "[data-scene] .current [data-variation]",
        "els => els.map(e => [e.closest('[data-scene]').dataset.scene, +e.dataset.variation,"
        " +e.dataset.seed, e.dataset.sha256])")
    expected = [[s["name"], v["variation"], v["seed"], v["sha256"]]
                for s in data["scenes"] for v in s["variations"]]
    assert shown == expected and len(shown) == 4


def test_every_thumbnail_decodes_and_nothing_leaves_file_urls(browser: Any,
                                                              gallery: Path) -> None:
    page, requested = open_page(browser, gallery)
    load_every_image(page)
    widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(widths) == 5 + 1 + 4 + 2  # training strip, reference, images, earlier ones
    assert all(w > 0 for w in widths), widths
    assert requested and all(url.startswith("file://") for url in requested), requested
    assert not any(url.endswith(".png") for url in requested)  # no full-size image unasked


def test_markup_from_the_file_shows_as_text_and_never_runs(browser: Any, gallery: Path) -> None:
    page, requested = open_page(browser, gallery)
    prompt = page.locator('[data-scene="markup"] .prompt')
    assert prompt.inner_text() == MARKUP
    assert page.evaluate("window.hacked") is None
    assert page.locator('[data-scene="markup"] .prompt *').count() == 0
    assert not [r for r in requested if r.startswith("dialog:")]


def test_an_edit_shows_the_earlier_images_beside_the_new_ones(browser: Any,
                                                              gallery: Path) -> None:
    page, _ = open_page(browser, gallery)
    scene = page.locator('[data-scene="reading"]')
    assert scene.locator(".prompt").inner_text() == "Luna reading in the rain"
    earlier = scene.locator('[data-version="previous"]')
    assert earlier.count() == 2
    assert "Luna reading by the fire" in earlier.first.inner_text()
    assert earlier.first.get_attribute("data-seed") in ("7", "8")
    current, old = scene.locator(".current").bounding_box(), scene.locator(".earlier").bounding_box()
    assert old["x"] > current["x"] + current["width"] - 1  # side by side on a laptop
    assert abs(old["y"] - current["y"]) < 2


def test_a_click_opens_the_full_size_file(browser: Any, gallery: Path) -> None:
    page, _ = open_page(browser, gallery)
    page.locator('[data-scene="forest"] [data-variation="1"] a').click()
    page.wait_for_load_state("load")
    assert page.url == (gallery.parent / "forest" / "1.png").as_uri()


def test_the_keyboard_moves_between_scenes(browser: Any, gallery: Path) -> None:
    page, _ = open_page(browser, gallery)
    focused = "() => document.activeElement.dataset.scene || null"
    visited = []
    for key in ("j", "j", "j", "j", "k"):
        page.keyboard.press(key)
        visited.append(page.evaluate(focused))
    assert visited == ["forest", "reading", "markup", "markup", "reading"]


def test_it_reads_on_a_phone_and_follows_the_dark_preference(browser: Any,
                                                              gallery: Path) -> None:
    page, _ = open_page(browser, gallery, viewport={"width": 390, "height": 844},
                        color_scheme="dark")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(18, 18, 18)"
    scene = page.locator('[data-scene="reading"]')
    current, old = scene.locator(".current").bounding_box(), scene.locator(".earlier").bounding_box()
    assert old["y"] >= current["y"] + current["height"] - 1  # stacked on a phone
    light, _ = open_page(browser, gallery, color_scheme="light")
    assert light.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(250, 250, 247)"


def test_the_page_still_works_after_the_outputs_folder_is_moved(browser: Any, gallery: Path,
                                                                tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "elsewhere" / "luna-results"
    shutil.copytree(gallery.parent, copy)
    page, requested = open_page(browser, copy / "index.html")
    load_every_image(page)
    assert all(w > 0 for w in page.eval_on_selector_all("img", "i => i.map(x => x.naturalWidth)"))
    assert all(url.startswith(copy.as_uri()) for url in requested), requested


def test_the_luna_demo_screenshot_is_made_by_this_browser(browser: Any, tmp_path: Path) -> None:
    """The README's picture (docs/gallery.png) comes from this code:
    `python -m tests.gallery_screenshot`."""
    from PIL import Image

    page_file = luna_gallery(tmp_path)
    out = tmp_path / "gallery.png"
    screenshot(browser, page_file, out)
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width == 1280 and image.height > 900
    data = index_of(page_file)
    assert [s["name"] for s in data["scenes"]] == ["forest", "reading", "beach"]
    assert data["counts"]["images"] == 5 and data["counts"]["previous"] == 1


def test_a_big_page_loads_only_the_thumbnails_in_view(browser: Any, tmp_path: Path) -> None:
    from galleryrun import recorded
    from test_gallery import page_for

    scenes = [{"name": f"scene{i:03d}", "prompt": f"Luna in place {i}", "variations": 2}
              for i in range(60)]
    path = write_pipeline(tmp_path, scenes=scenes)
    recorded(path, failed={}, pending=set())
    page_for(path)
    page, requested = open_page(browser, tmp_path / "outputs" / "index.html",
                                viewport={"width": 1280, "height": 900})
    page.wait_for_timeout(300)  # let the lazy loader settle after load
    thumbs = [url for url in requested if url.endswith(".webp")]
    assert page.locator("img").count() == 5 + 120
    assert 5 <= len(thumbs) < 60, len(thumbs)  # what is near the viewport, not all 125
