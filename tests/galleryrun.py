"""Test support for the gallery: runs in this process against a simulator, and a real
headless Chromium (Debian's, driven by Playwright) to open pages from file://."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from runner.app import Target, run
from runner.display.reporters import QuietReporter
from runner.engine.context import RunOptions
from runner.engine.executor import Summary
from runner.engine.outputs import output_path
from runner.engine.plan import plan
from runner.pipeline.loader import load_pipeline
from runner.simulator import Simulator
from runner.state.fingerprint import sha256_file
from runner.state.rows import ApiIdentity
from runner.state.store import Store
from tests.simrun import make_image

CHROMIUM = Path(os.environ.get("BRIA_RUN_TEST_CHROMIUM", "/usr/bin/chromium"))
INSTALL_HINT = ("headless Chromium is needed for the browser tests: `apt-get install -y "
                "chromium` (Debian) and `pip install '.[test]'` (Playwright's Python API)")


def run_here(path: Path, sim: Simulator, monkeypatch: Any, reporter: Any = None) -> Summary:
    """`bria-run run PATH` in this process against ``sim``, its state beside the file."""
    monkeypatch.setenv("BRIA_API_URL", sim.base_url)
    monkeypatch.setenv("BRIA_API_TOKEN", sim.config.token)
    options = RunOptions(poll_every=0.1, job_poll=0.05, resume_command=f"bria-run {path.name}")
    return run(Target(path, str(path.parent / "state.sqlite")), options,
               reporter or QuietReporter(), command="bria-run run", rpm=None)


def set_prompt(path: Path, scene: str, prompt: str) -> None:
    """Edit one scene's prompt in a file written by ``simrun.write_pipeline``."""
    text = path.read_text()
    quoted = r'"(?:[^"\\]|\\.)*"'  # a JSON string, escaped quotes included
    pattern = re.compile(r'(\{"name": "' + re.escape(scene) + r'"[^}]*?"prompt": )' + quoted)
    edited, count = pattern.subn(lambda m: m.group(1) + _json_string(prompt), text)
    assert count == 1, f"no scene {scene!r} in {path}"
    path.write_text(edited)


def _json_string(text: str) -> str:
    import json

    return json.dumps(text)


def links_of(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', html)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser; fails (never skips) when it is not installed."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise AssertionError(INSTALL_HINT) from exc
    assert CHROMIUM.exists(), f"no {CHROMIUM}: {INSTALL_HINT}"
    with sync_playwright() as driver:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def load_every_image(page: Any) -> None:
    """Scroll each lazy thumbnail into view and wait until every image has loaded."""
    for image in page.locator("img").all():
        image.scroll_into_view_if_needed()
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    page.evaluate("window.scrollTo(0, 0)")


def recorded(path: Path, *, failed: dict[str, str], pending: set[str]) -> None:
    """A state as a run leaves it, written through the real store: training done, scenes
    done (with their image files), failed or never finished."""
    pipeline, _ = load_pipeline(path)
    with Store.open(path.parent / "state.sqlite", ApiIdentity("simulated", "w")) as store:
        the_plan = plan(pipeline, store.load(), pipeline.image_hashes)
        for step in the_plan.steps:
            row = store.begin_step(step.key, step.kind, step.fingerprint)
            if step.key in failed:
                store.fail_step(row.id, failed[step.key])
            elif step.key in pending:
                continue
            elif step.kind == "scene":
                image = make_image(output_path(pipeline.outputs, step.scene or "",
                                               step.variation or 1), step.seed or 0)
                store.finish_step(row.id, outputs={"inputs": step.inputs}, artifact={
                    "scene": step.scene, "variation": step.variation, "path": str(image),
                    "sha256": sha256_file(image), "seed": step.seed, "source": None,
                    "bytes": image.stat().st_size})
            else:
                store.finish_step(row.id, remote_id="4001", outputs={"status": "Completed"})
