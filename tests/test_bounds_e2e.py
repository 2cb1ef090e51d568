"""A whole run against a hostile simulator: an HTML page served as a result fails that scene
with the reason and writes nothing; a job error that echoes the token is shown and stored
redacted; the other scenes finish."""

from __future__ import annotations

from pathlib import Path

import pytest
from simrun import TOKEN, bria, env_for, write_pipeline

from runner.simulator import SimConfig, Simulator

SCENES = [
    {"name": "forest", "prompt": "Luna in a forest"},
    {"name": "broken", "prompt": "Luna sim-error"},  # the job ends ERROR, echoing the token
]


@pytest.mark.slow
def test_hostile_results_fail_their_scene_loudly_and_leak_nothing(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, scenes=SCENES)
    config = SimConfig(token=TOKEN, training_seconds=0.5, generation_seconds=0.1,
                       result_fault="html", echo_token=True)
    with Simulator(config) as sim:
        result = bria(["run", str(path), "--json"], env=env_for(sim.base_url), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert ("scene/forest/1: download of /__sim/results/" in result.stderr
            and "failed: not a PNG, JPEG or WEBP image (it begins `<!doctype html>" in result.stderr)
    assert "scene/broken/1: generation failed" in result.stderr
    assert "(api_token *** has no access to this model)" in result.stderr
    for text in (result.stdout, result.stderr):
        assert TOKEN not in text
    for state in (tmp_path / "state").iterdir():
        assert TOKEN.encode() not in state.read_bytes(), state
    outputs = tmp_path / "outputs"
    assert not outputs.exists() or not [p for p in outputs.rglob("*") if p.suffix == ".png"]
