"""The checked form of an unchanged pipeline file: kept after a clean check, used only for
the very same bytes, never trusted when damaged, and never a reason to skip the image checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from simrun import write_pipeline

from runner.errors import PipelineInvalid
from runner.pipeline import doccache
from runner.pipeline.loader import load_pipeline


@pytest.fixture()
def project(tmp_path: Path) -> tuple[Path, Path]:
    path = write_pipeline(tmp_path)
    return path, tmp_path / "state" / ".cache"


def test_a_clean_file_is_kept_and_loads_the_same(project: tuple[Path, Path]) -> None:
    path, cache = project
    first, said = load_pipeline(path, cache=cache)
    assert len(list(cache.glob("*.json"))) == 1
    again, warnings = load_pipeline(path, cache=cache)
    assert again == first and again.image_hashes == first.image_hashes
    assert warnings == said and said  # the images' warnings (320 px) come back, placed alike
    assert doccache.get(cache, path.read_bytes()) is not None


def test_an_edit_misses_and_a_damaged_entry_is_ignored(project: tuple[Path, Path]) -> None:
    path, cache = project
    load_pipeline(path, cache=cache)
    (entry,) = cache.glob("*.json")
    entry.write_text('{"format": 1, "key": "')  # cut short
    assert doccache.get(cache, path.read_bytes()) is None
    assert load_pipeline(path, cache=cache)[0].name == "luna"
    path.write_text(path.read_text().replace("name: luna", "name: luna2"))
    assert load_pipeline(path, cache=cache)[0].name == "luna2"


def test_a_kept_file_still_checks_the_images_it_names(project: tuple[Path, Path]) -> None:
    path, cache = project
    load_pipeline(path, cache=cache)
    (path.parent / "scenes" / "forest.png").write_bytes(b"not an image")
    with pytest.raises(PipelineInvalid) as caught:
        load_pipeline(path, cache=cache)
    assert "forest.png" in str(caught.value)


def test_a_file_with_problems_is_not_kept(project: tuple[Path, Path]) -> None:
    path, cache = project
    path.write_text(path.read_text().replace("name: luna", "name: luna\nnmae: x"))
    with pytest.raises(PipelineInvalid):
        load_pipeline(path, cache=cache)
    assert not cache.exists() or not list(cache.glob("*.json"))


def test_an_unwritable_cache_is_no_error(project: tuple[Path, Path]) -> None:
    path, cache = project
    cache.parent.mkdir(parents=True)
    cache.write_text("a file where the folder would be")
    assert load_pipeline(path, cache=cache)[0].name == "luna"
