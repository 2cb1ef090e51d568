"""The project root and the default state are found from the pipeline file, not the cwd."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.app import Target, state_location
from runner.pipeline.places import project_root
from runner.pipeline.spec import Pipeline


def test_nearest_folder_with_state_or_git_wins(tmp_path: Path) -> None:
    (tmp_path / "studio" / ".git").mkdir(parents=True)
    (tmp_path / "studio" / "chars" / "state").mkdir(parents=True)
    deep = tmp_path / "studio" / "chars" / "luna" / "luna.yaml"
    deep.parent.mkdir(parents=True)
    other = tmp_path / "studio" / "props" / "cup.yaml"
    other.parent.mkdir(parents=True)
    assert project_root(deep) == tmp_path / "studio" / "chars"
    assert project_root(other) == tmp_path / "studio"


def test_a_file_alone_is_its_own_root(tmp_path: Path) -> None:
    alone = tmp_path / "a" / "b" / "luna.yaml"
    alone.parent.mkdir(parents=True)
    assert project_root(alone) == alone.parent


def test_the_default_state_does_not_depend_on_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    file = tmp_path / "repo" / "pipelines" / "luna.yaml"
    file.parent.mkdir()
    pipeline = Pipeline.__new__(Pipeline)
    object.__setattr__(pipeline, "path", file)
    object.__setattr__(pipeline, "name", "luna")
    monkeypatch.delenv("BRIA_RUN_STATE", raising=False)
    seen = set()
    for cwd in (tmp_path, file.parent, tmp_path / "repo"):
        monkeypatch.chdir(cwd)
        seen.add(state_location(pipeline, Target(file)))
    assert seen == {str(tmp_path / "repo" / "state" / "luna.sqlite")}
