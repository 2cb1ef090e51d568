"""The gallery page and index.json: what they show, built from real runs (in this process,
against the simulator over loopback HTTP) and from states written through the real store.
The same pages opened in a real browser: tests/test_gallery_browser.py."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from galleryrun import links_of, recorded, run_here, set_prompt
from simrun import TOKEN, make_image, write_pipeline

from runner.app import Target, write_gallery_page
from runner.cli import main
from runner.display.thumbs import ensure_thumbnails, thumb_path
from runner.engine.outputs import move_aside, sidecar_path
from runner.simulator import SimConfig, Simulator
from runner.state.fingerprint import sha256_file

MARKUP = 'Luna <script>window.hacked = 1</script> & "friends" <img src=x onerror=alert(1)>'
SCENES: list[dict[str, Any]] = [
    {"name": "forest", "reference": "scenes/forest.png", "prompt": "Luna in a forest"},
    {"name": "reading", "prompt": "Luna reading by the fire", "variations": 2, "seed": 7},
]


@pytest.fixture(scope="module")
def sim() -> Any:
    with Simulator(SimConfig(token=TOKEN, training_seconds=0.2, generation_seconds=0.05)) as s:
        yield s


def index(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "outputs" / "index.json").read_text())


def page(folder: Path) -> str:
    return (folder / "outputs" / "index.html").read_text()


def test_a_run_writes_the_page_and_names_it(tmp_path: Path, sim: Simulator,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_pipeline(tmp_path, scenes=SCENES)
    summary = run_here(path, sim, monkeypatch)
    assert summary.gallery == str(tmp_path / "outputs" / "index.html")
    data = index(tmp_path)
    assert [s["name"] for s in data["scenes"]] == ["forest", "reading"]
    reading = data["scenes"][1]
    assert [(v["variation"], v["seed"], v["state"]) for v in reading["variations"]] == [
        (1, 7, "done"), (2, 8, "done")]
    assert reading["variations"][0]["file"] == "reading/1.png"
    assert reading["variations"][0]["sha256"] == sha256_file(tmp_path / "outputs/reading/1.png")
    assert data["model"]["id"] is not None and data["model"]["trained_at"]
    assert data["counts"] == {"scenes": 2, "images": 3, "failed": 0, "pending": 0,
                              "previous": 0}
    assert len(data["character"]["training_images"]) == 5
    assert data["scenes"][0]["route"] == "reference" and data["scenes"][0]["reference"]["thumb"]


class Recording:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def emit(self, event: str, key: str | None = None, **data: Any) -> None:
        self.events.append((event, data))

    def close(self) -> None:
        pass


def test_a_run_with_a_failed_scene_refreshes_the_page_and_says_where_first(
        tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.display.reporters import describe
    from runner.errors import RunFailed

    scenes = [SCENES[1], {"name": "castle", "prompt": "Luna at a forbidden castle"}]
    path = write_pipeline(tmp_path, scenes=scenes)
    reporter = Recording()
    with pytest.raises(RunFailed):
        run_here(path, sim, monkeypatch, reporter)
    page_file = str(tmp_path / "outputs" / "index.html")
    assert reporter.events[-1] == ("gallery", {"path": page_file, "outcome": "failed"})
    assert describe("gallery", None, reporter.events[-1][1]) == f"gallery: {page_file}"
    castle = index(tmp_path)["scenes"][1]
    assert castle["state"] == "failed" and "content moderation" in castle["error"]
    assert castle["retry"] == "bria-run luna.yaml"
    assert index(tmp_path)["scenes"][0]["state"] == "done"


def test_a_run_that_writes_nothing_leaves_the_page_alone(
        tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_pipeline(tmp_path, scenes=SCENES)
    run_here(path, sim, monkeypatch)
    written = (tmp_path / "outputs" / "index.html").stat().st_mtime_ns
    assert run_here(path, sim, monkeypatch).gallery is None
    assert (tmp_path / "outputs" / "index.html").stat().st_mtime_ns == written


def test_every_link_of_the_page_is_relative_and_inside_the_outputs(
        tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    run_here(write_pipeline(tmp_path, scenes=SCENES), sim, monkeypatch)
    links = links_of(page(tmp_path))
    assert len(links) >= 5 + 1 + 3 * 2  # training strip, reference, images and their links
    root = (tmp_path / "outputs").resolve()
    for link in links:
        assert "://" not in link and not link.startswith(("/", "..")), link
        target = (root / link.split("#")[0]).resolve() if not link.startswith("#") else root
        assert target.is_relative_to(root) and target.exists(), link


def test_an_edited_prompt_shows_the_earlier_image_with_its_prompt_seed_and_date(
        tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_pipeline(tmp_path, scenes=SCENES)
    run_here(path, sim, monkeypatch)
    before = index(tmp_path)["scenes"][1]["variations"][0]
    set_prompt(path, "reading", "Luna reading in the rain")
    run_here(path, sim, monkeypatch)
    reading = index(tmp_path)["scenes"][1]
    assert reading["prompt"] == "Luna reading in the rain"
    earlier = {p["variation"]: p for p in reading["previous"]}
    assert sorted(earlier) == [1, 2]
    assert earlier[1]["sha256"] == before["sha256"] and earlier[1]["seed"] == 7
    assert earlier[1]["prompt"] == "Luna reading by the fire"
    assert earlier[1]["created_at"] == before["created_at"]
    assert earlier[1]["file"].startswith("reading/previous/")
    sidecar = json.loads(sidecar_path(tmp_path / "outputs" / earlier[1]["file"]).read_text())
    assert (sidecar["prompt"], sidecar["seed"], sidecar["sha256"]) == (
        "Luna reading by the fire", 7, before["sha256"])
    assert page(tmp_path).count('data-version="previous"') == 2


def test_markup_in_the_file_is_shown_as_text(tmp_path: Path) -> None:
    scenes = [{"name": "forest", "prompt": MARKUP, "negative_prompt": "<b>bold</b>"}]
    path = write_pipeline(tmp_path, scenes=scenes,
                          extra_character="")
    text = page_for(path)
    assert "<script>window" not in text and "<img src=x" not in text and "<b>bold" not in text
    assert "Luna &lt;script&gt;window.hacked = 1&lt;/script&gt; &amp; &quot;friends&quot;" in text
    assert text.count("<script>") == 1  # the page's own, allowed by its hash in the CSP
    assert index(tmp_path)["scenes"][0]["prompt"] == MARKUP


def page_for(path: Path) -> str:
    """`bria-run gallery` through the CLI; the page's text."""
    result = CliRunner().invoke(main, ["gallery", str(path), "--state",
                                       str(path.parent / "state.sqlite")])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("index.html")
    return (path.parent / "outputs" / "index.html").read_text()


def test_failed_and_pending_scenes_are_marked_with_the_error_and_the_retry(
        tmp_path: Path) -> None:
    scenes = [*SCENES, {"name": "castle", "prompt": "Luna at a castle"}]
    path = write_pipeline(tmp_path, scenes=scenes)
    error = "generation failed (422): prompt <rejected> by content moderation"
    recorded(path, failed={"scene/forest/1": error}, pending={"scene/castle/1"})
    text = page_for(path)
    data = index(tmp_path)
    states = {s["name"]: s["state"] for s in data["scenes"]}
    assert states == {"forest": "failed", "reading": "done", "castle": "pending"}
    forest = data["scenes"][0]
    assert forest["error"] == error and forest["retry"] == f"bria-run {path} --state " \
        f"{tmp_path / 'state.sqlite'}"
    assert 'data-scene="forest" data-state="failed"' in text
    assert 'data-scene="castle" data-state="pending"' in text
    assert 'data-scene="reading" tabindex' in text
    assert "prompt &lt;rejected&gt; by content moderation" in text
    assert data["counts"] == {"scenes": 3, "images": 2, "failed": 1, "pending": 1,
                              "previous": 0}


def test_a_file_never_run_gives_a_page_of_pending_scenes(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, scenes=SCENES)
    text = page_for(path)
    assert text.count('data-state="pending"') == 2 + 3  # two scenes, three variations
    assert index(tmp_path)["model"] == {"id": None, "source": "train", "version": "fibo",
                                        "status": "not trained yet", "trained_at": None}


def test_earlier_versions_the_state_does_not_know_are_shown_from_their_sidecar(
        tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, scenes=SCENES)
    old = make_image(tmp_path / "outputs" / "forest" / "1.png", 3)
    sha = sha256_file(old)
    moved = move_aside(old, "0badc0de", {"sha256": sha, "prompt": "Luna, an older idea",
                                         "seed": 5, "variation": 1,
                                         "created_at": "2026-01-02T03:04:05Z"})
    bare = make_image(tmp_path / "outputs" / "forest" / "previous" / "unrecorded-1" / "1.png", 4)
    page_for(path)  # no state at all: a state lost, or outputs copied from elsewhere
    earlier = index(tmp_path)["scenes"][0]["previous"]
    assert moved is not None
    by_file = {p["file"]: p for p in earlier}
    assert by_file["forest/previous/0badc0de/1.png"]["prompt"] == "Luna, an older idea"
    assert by_file["forest/previous/0badc0de/1.png"]["created_at"] == "2026-01-02T03:04:05Z"
    unknown = by_file["forest/previous/unrecorded-1/1.png"]
    assert unknown["prompt"] is None and unknown["sha256"] == sha256_file(bare)


def test_thumbnails_are_made_once_and_reused(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, scenes=SCENES)
    recorded(path, failed={}, pending=set())
    page_for(path)
    thumbs = sorted((tmp_path / "outputs" / ".thumbs").iterdir())
    assert len(thumbs) == 5 + 1 + 3
    stamps = [t.stat().st_mtime_ns for t in thumbs]
    page_for(path)
    assert [t.stat().st_mtime_ns for t in thumbs] == stamps


def test_a_thumbnail_scales_to_384_px_and_an_undecodable_image_has_none(tmp_path: Path) -> None:
    big = make_image(tmp_path / "big.png", 1, size=1000)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    made = ensure_thumbnails(tmp_path, [("a" * 64, big), ("b" * 64, broken)])
    assert list(made) == ["a" * 64]
    assert (made["a" * 64].width, made["a" * 64].height) == (384, 384)
    assert thumb_path(tmp_path, "a" * 64).stat().st_mode & 0o044 == 0o044  # readable by all


def test_many_thumbnails_are_made_by_worker_processes(tmp_path: Path) -> None:
    images = [(f"{i:064d}", make_image(tmp_path / f"{i}.png", i, size=300)) for i in range(40)]
    made = ensure_thumbnails(tmp_path / "out", images, workers=2)
    assert len(made) == 40 and all(t.width == 300 for t in made.values())


def test_the_page_of_a_stale_model_shows_the_images_that_exist(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, scenes=SCENES)
    recorded(path, failed={}, pending=set())
    make_image(tmp_path / "training" / "09.png", 9)  # a new training image: model stale
    page_for(path)
    assert index(tmp_path)["counts"]["images"] == 3


def test_gallery_command_has_help() -> None:
    result = CliRunner().invoke(main, ["gallery", "--help"])
    assert result.exit_code == 0 and "index.html" in result.stdout and "--open" in result.stdout


def test_write_gallery_page_refuses_an_invalid_file(tmp_path: Path) -> None:
    from runner.errors import PipelineInvalid

    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: Bad Name\n")
    with pytest.raises(PipelineInvalid):
        write_gallery_page(Target(bad), "bria-run bad.yaml")
    assert not (tmp_path / "outputs").exists()
    assert os.listdir(tmp_path) == ["bad.yaml"]


@pytest.mark.slow
def test_open_hands_the_page_to_the_web_browser(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import time
    import webbrowser

    path = write_pipeline(tmp_path, scenes=SCENES)
    seen = tmp_path / "opened.txt"
    script = f"import sys; open({str(seen)!r}, 'w').write(sys.argv[1])"
    monkeypatch.setenv("BROWSER", f"{sys.executable} -c {json.dumps(script)} %s")
    monkeypatch.setattr(webbrowser, "_tryorder", None)  # read $BROWSER afresh
    monkeypatch.setattr(webbrowser, "_browsers", {})
    result = CliRunner().invoke(main, ["gallery", str(path), "--open", "--state",
                                       str(tmp_path / "state.sqlite")])
    assert result.exit_code == 0, result.output
    for _ in range(100):
        if seen.exists() and seen.read_text():
            break
        time.sleep(0.05)
    assert seen.read_text() == (tmp_path / "outputs" / "index.html").resolve().as_uri()


def test_a_recorded_path_outside_the_outputs_is_never_shown_or_read(tmp_path: Path) -> None:
    from runner.state.store import Store

    path = write_pipeline(tmp_path, scenes=SCENES[:1])
    recorded(path, failed={}, pending=set())
    outside = make_image(tmp_path / "elsewhere" / "secret.png", 42)
    inside = str((tmp_path / "outputs" / "forest" / "1.png").resolve())
    with Store.open(tmp_path / "state.sqlite", None) as store:
        store.move_artifact(inside, str(outside))  # a tampered or foreign state
    page_for(path)
    forest = index(tmp_path)["scenes"][0]
    assert forest["previous"] == [] and forest["variations"][0]["state"] == "missing"
    assert not thumb_path(tmp_path / "outputs", sha256_file(outside)).exists()


@pytest.mark.slow
def test_the_luna_demo_ends_with_the_path_of_its_page(tmp_path: Path) -> None:
    """The README's first command, as a user runs it: the last line names the page."""
    import shutil

    from simrun import REPO, bria

    shutil.copytree(REPO / "pipelines", tmp_path / "pipelines",
                    ignore=shutil.ignore_patterns("outputs"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIA_")}
    env["PYTHONPATH"] = str(REPO)
    result = bria(["pipelines/luna.yaml", "--simulate"], env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    last = result.stdout.splitlines()[-1]
    assert last == "done: 5 new image(s) in pipelines/outputs/luna/, 21 step(s) run; gallery: " \
        "pipelines/outputs/luna/index.html"
    data = json.loads((tmp_path / "pipelines/outputs/luna/index.json").read_text())
    assert [s["name"] for s in data["scenes"]] == ["forest", "reading", "beach"]
    assert data["counts"]["images"] == 5
