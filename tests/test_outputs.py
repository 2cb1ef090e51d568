"""Output paths never escape the outputs folder; writes are atomic; nothing is overwritten."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from runner.engine.outputs import move_aside, output_path, write_atomically
from runner.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def test_output_path_is_scene_folder_and_variation(tmp_path: Path) -> None:
    assert output_path(tmp_path, "forest", 2) == (tmp_path / "forest" / "2.png").resolve()


@pytest.mark.parametrize("scene", ["../elsewhere", "../../etc", "/tmp/abs"],
                         ids=["parent", "grandparent", "absolute"])
def test_a_scene_name_cannot_lead_outside(tmp_path: Path, scene: str) -> None:
    with pytest.raises(ConfigError, match="escapes the outputs folder"):
        output_path(tmp_path / "outputs", scene, 1)


def test_a_symlinked_scene_folder_pointing_outside_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "outputs", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "forest").symlink_to(outside)
    with pytest.raises(ConfigError):
        output_path(root, "forest", 1)


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "forest" / "1.png"
    write_atomically(target, lambda out: (out.write(b"old"), "sha")[1])

    def broken(out: object) -> str:
        out.write(b"half")  # type: ignore[attr-defined]
        raise OSError("connection dropped")

    with pytest.raises(OSError):
        write_atomically(target, broken)
    assert target.read_bytes() == b"old"
    assert [p.name for p in target.parent.iterdir()] == ["1.png"]


def test_moving_aside_never_overwrites_an_earlier_copy(tmp_path: Path) -> None:
    target = tmp_path / "forest" / "1.png"
    target.parent.mkdir()
    kept = []
    for content in (b"first", b"second"):
        target.write_bytes(content)
        kept.append(move_aside(target, "abcd1234"))
    assert [p.read_bytes() for p in kept if p] == [b"first", b"second"]
    assert kept[0] != kept[1] and not target.exists()


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_output_files_honour_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    # A fresh interpreter: the mode is read from the umask once, when outputs is imported.
    script = (f"import os; os.umask({umask}); from pathlib import Path; "
              "from runner.engine.outputs import write_atomically, write_record; "
              f"p = Path({str(tmp_path / 'a.png')!r}); "
              "write_atomically(p, lambda h: h.write(b'x') and 'sha'); write_record(p, {})")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO)
    assert stat.S_IMODE((tmp_path / "a.png").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == mode
