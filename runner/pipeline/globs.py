"""Image globs, bounded: they stay inside the project root and their work has a limit.

A glob's literal part (the folders before its first wildcard) must lie inside the pipeline's
project root (``runner.pipeline.places``), judged from the text alone before anything is
listed: ``/**/*.png`` and ``../../../**/*.png`` are refused at once. ``..`` after a wildcard
is refused too (it cannot be judged without listing). A named file or folder outside the root
is still fine: it is one entry, not a search.

Expansion is our own walk, not ``glob.glob``: it looks at no more than ``MAX_ENTRIES``
directory entries (then ``GlobTooWide``), and ``**`` never descends into a symlinked folder,
so a symlink loop cannot make it run forever. Like ``glob``, wildcards skip names starting
with a dot unless the pattern's part starts with one, and matching is case-sensitive.
"""

from __future__ import annotations

import os
from fnmatch import fnmatchcase
from pathlib import Path, PurePath

MAX_ENTRIES = 20_000  # directory entries one glob may look at: far above any real image folder
_WILD = frozenset("*?[")


class GlobTooWide(Exception):
    """The walk looked at ``MAX_ENTRIES`` entries without finishing."""


def is_glob(entry: str) -> bool:
    return any(ch in entry for ch in _WILD)


def _split(pattern: PurePath) -> tuple[PurePath, tuple[str, ...]]:
    """The literal folder before the first wildcard, and the parts from it on."""
    parts = pattern.parts
    first = next(i for i, part in enumerate(parts) if is_glob(part))
    return PurePath(*parts[:first]) if first else PurePath("."), parts[first:]


def reach_problem(entry: str, base: Path, root: Path) -> str | None:
    """Why the glob ``entry`` (relative to ``base``) may not be used, or None."""
    pattern = PurePath(os.path.expanduser(entry))
    literal, rest = _split(pattern)
    if ".." in rest:
        return f"`{entry}` has `..` after a wildcard; name the folder before the wildcard"
    start = Path(os.path.normpath(base / literal))
    if start != root and root not in start.parents:
        return (f"`{entry}` searches `{start}`, outside the project root `{root}`; a glob "
                "must stay inside it")
    return None


def expand(entry: str, base: Path, limit: int | None = None) -> list[Path]:
    """What ``entry`` matches, except folders: absolute, sorted, regular files resolved. Other
    kinds (a FIFO, a device, a broken link) are kept, unresolved, for the image check to
    refuse by name: skipping them would hide a mistake."""
    literal, rest = _split(PurePath(os.path.expanduser(entry)))
    found = _Walk(limit or MAX_ENTRIES).match(Path(os.path.normpath(base / literal)), rest)
    return sorted({_settled(path) for path in found})


def list_folder(folder: Path, suffixes: tuple[str, ...], limit: int | None = None) -> list[Path]:
    """The entries of ``folder`` with one of ``suffixes`` that are not folders, like ``expand``."""
    found = [Path(e.path) for e in _Walk(limit or MAX_ENTRIES).list(folder)
             if Path(e.name).suffix.lower() in suffixes and not e.is_dir()]
    return sorted({_settled(path) for path in found})


def _settled(path: Path) -> Path:
    return path.resolve() if path.is_file() else path


def _is_leaf(path: Path) -> bool:
    return os.path.lexists(path) and not path.is_dir()


class _Walk:
    def __init__(self, limit: int) -> None:
        self.left = limit

    def match(self, folder: Path, parts: tuple[str, ...]) -> list[Path]:
        if not parts:
            return [folder] if _is_leaf(folder) else []
        head, rest = parts[0], parts[1:]
        if head == "**":
            return self._any_depth(folder, rest)
        if not is_glob(head):
            return self.match(folder / head, rest)
        found: list[Path] = []
        for entry in self.list(folder):
            if _matches(entry.name, head) and (rest == () or entry.is_dir()):
                found += self.match(Path(entry.path), rest)
        return found

    def _any_depth(self, folder: Path, rest: tuple[str, ...]) -> list[Path]:
        """``**``: this folder and every folder below it, never through a symlinked folder."""
        found = self.match(folder, rest) if rest else []
        for entry in self.list(folder):
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                if not rest and not entry.name.startswith(".") and not entry.is_dir():
                    found.append(Path(entry.path))
                continue
            found += self._any_depth(Path(entry.path), rest)
        return found

    def list(self, folder: Path) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(folder) as entries:
                listed = []
                for entry in entries:
                    self.left -= 1
                    if self.left < 0:
                        raise GlobTooWide
                    listed.append(entry)
        except (NotADirectoryError, FileNotFoundError, PermissionError):
            return []
        return sorted(listed, key=lambda e: e.name)


def _matches(name: str, part: str) -> bool:
    if name.startswith(".") and not part.startswith("."):
        return False
    return fnmatchcase(name, part)
