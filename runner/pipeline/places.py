"""Where a pipeline file belongs: its project root, found from the file, never from the folder
bria-run happens to be run in.

The project root is the nearest folder, from the file's own folder upwards, that holds a
``state/`` folder or a ``.git``; a file in neither lives alone and its own folder is its root.
The default state (``<root>/state/<name>.sqlite``) and the reach of image globs both follow from
it, so the same file means the same state and the same images from any working directory.
"""

from __future__ import annotations

from pathlib import Path

MARKERS = ("state", ".git")  # a `state/` folder, or a git checkout (folder or worktree file)


def project_root(pipeline_file: Path) -> Path:
    """The project root of ``pipeline_file`` (see the module docstring)."""
    start = pipeline_file.resolve().parent
    for folder in (start, *start.parents):
        if (folder / "state").is_dir() or (folder / ".git").exists():
            return folder
    return start


def default_state_folder(pipeline_file: Path) -> Path:
    return project_root(pipeline_file) / "state"


def document_cache(pipeline_file: Path) -> Path | None:
    """Where runs keep the checked form of unchanged pipeline files (``doccache``): inside the
    project's ``state/`` folder, once there is one (nothing is created for it)."""
    folder = default_state_folder(pipeline_file)
    return folder / ".cache" if folder.is_dir() else None
