"""What a run shows: timestamped plain lines, one JSON event per line, quiet, and the rich
live display (rendered into a string as a terminal would show it)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from simrun import TOKEN, bria, env_for, write_pipeline

from runner.display.live import LiveReporter
from runner.display.reporters import JsonReporter, PlainReporter, QuietReporter
from runner.simulator import SimConfig, Simulator

STAMP = re.compile(r"^\d\d:\d\d:\d\d ")
EVENTS: list[tuple[str, str | None, dict[str, Any]]] = [
    ("plan", None, {"text": "plan: 9 step(s) to run", "credits": 89.0, "uploads": 2,
                    "scenes": ["scene/forest/1", "scene/reading/1"]}),
    ("phase", None, {"name": "training"}),
    ("step", "upload/a.png", {"kind": "upload", "state": "started"}),
    ("step", "upload/a.png", {"kind": "upload", "state": "done", "remote_id": "30001"}),
    ("training", "train", {"status": "InProgress", "model_id": 4001, "elapsed": 61.0}),
    ("training", "train", {"status": "InProgress", "model_id": 4001, "elapsed": 62.0}),
    ("phase", None, {"name": "generation", "total": 2}),
    ("wait", None, {"endpoint": "POST /v2/image/generate/tailored", "seconds": 30.0}),
    ("scene", "scene/forest/1", {"state": "generating", "request_id": "r1"}),
    ("step", "scene/reading/1", {"kind": "scene", "state": "failed", "error": "moderation"}),
]


def test_plain_lines_are_timestamped_and_skip_per_poll_noise() -> None:
    out = io.StringIO()
    reporter = PlainReporter(out)
    for kind, key, data in EVENTS:
        reporter.emit(kind, key, **data)
    lines = out.getvalue().splitlines()
    assert lines and all(STAMP.match(line) for line in lines), lines
    text = [line[9:] for line in lines]
    assert text.count("training model 4001: InProgress (1m01s)") == 1  # a repeated status: once
    assert "upload/a.png: done (id 30001)" in text
    assert "scene/reading/1: FAILED: moderation" in text
    assert not any("generating" in line for line in text)  # per-job states are live-only


def test_json_reporter_writes_one_object_per_line() -> None:
    out = io.StringIO()
    reporter = JsonReporter(out)
    for kind, key, data in EVENTS:
        reporter.emit(kind, key, **data)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["event"] for e in events] == [kind for kind, _, _ in EVENTS]
    assert all(isinstance(e["ts"], float) for e in events)
    assert events[4] == {**events[4], "key": "train", "status": "InProgress", "model_id": 4001}


def test_quiet_reporter_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    reporter = QuietReporter()
    for kind, key, data in EVENTS:
        reporter.emit(kind, key, **data)
    assert capsys.readouterr() == ("", "")


def render(events: list[tuple[str, str | None, dict[str, Any]]]) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    reporter = LiveReporter(console)
    for kind, key, data in events:
        reporter.emit(kind, key, **data)
    reporter.close()  # draws the last frame
    last_frame = out.getvalue().rsplit("\x1b[2K", 1)[-1]
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", last_frame)


def test_live_display_shows_phase_uploads_training_backoff_and_scenes() -> None:
    screen = render(EVENTS)
    rows = {line.split()[0]: line.split(maxsplit=1)[1].strip() for line in screen.splitlines()
            if line.strip() and not line.startswith("plan:")}
    assert rows["phase"] == "generation"
    assert rows["uploads"] == "1/2"
    assert rows["training"].startswith("model 4001: InProgress (1m0")  # elapsed goes on
    assert re.search(r"rate limit +waiting \d+ s for Bria's rate limit on image generation",
                     screen)
    assert rows["scene/forest/1"] == "generating"
    assert rows["scene/reading/1"] == "failed"


def test_live_display_lists_queued_scenes_from_the_plan() -> None:
    screen = render(EVENTS[:2])
    assert re.search(r"scene/forest/1 +queued", screen) and re.search(r"phase +training", screen)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimConfig(token=TOKEN, training_seconds=1.0, generation_seconds=0.1)) as s:
        yield s


@pytest.mark.slow
def test_the_three_outputs_of_a_real_run(tmp_path: Path, sim: Simulator) -> None:
    """--json: only JSON on stdout; plain (not a terminal): timestamped lines on stderr and
    the final line on stdout; -q: the final line only."""
    path = write_pipeline(tmp_path)
    env = env_for(sim.base_url)
    first = bria(["run", str(path), "--json"], env=env, cwd=tmp_path)
    assert first.returncode == 0 and first.stderr == "", first.stderr
    events = [json.loads(line) for line in first.stdout.splitlines()]
    assert events[-2] == {**events[-2], "event": "finished", "images": 3}
    page = str(tmp_path / "outputs" / "index.html")
    assert events[-1] == {**events[-1], "event": "gallery", "path": page, "outcome": "done"}
    assert {e["event"] for e in events} >= {"plan", "phase", "step", "training", "scene"}
    path.write_text(path.read_text().replace("Luna in a forest", "Luna in a dark forest"))
    plain = bria(["run", str(path)], env=env, cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == \
        "done: 1 new image(s) in outputs/, 1 step(s) run; gallery: outputs/index.html\n"
    assert all(STAMP.match(line) for line in plain.stderr.splitlines()), plain.stderr
    assert "kept earlier output" in plain.stderr or "previous" in plain.stderr
    path.write_text(path.read_text().replace("Luna reading by the fire", "Luna reading"))
    quiet = bria(["run", str(path), "-q"], env=env, cwd=tmp_path)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (
        0, "done: 2 new image(s) in outputs/, 2 step(s) run; gallery: outputs/index.html\n", "")
