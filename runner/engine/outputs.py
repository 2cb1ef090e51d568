"""Output files: paths that never escape the outputs folder, atomic writes, nothing
overwritten silently.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from runner.errors import ConfigError, DiskFull
from runner.state.fingerprint import sha256_file
from runner.state.rows import FileState


@functools.lru_cache(maxsize=8)
def _resolved(root: Path) -> Path:
    return root.resolve()


def output_path(root: Path, scene: str, variation: int) -> Path:
    """``<outputs>/<scene>/<n>.png``, refusing anything that would land outside ``root``
    (a scene name with ``..`` or a symlinked scene folder pointing elsewhere)."""
    path = (root / scene / f"{variation}.png").resolve()
    if not path.is_relative_to(_resolved(root)):
        raise ConfigError(f"output path for scene {scene!r} escapes the outputs folder {root}")
    return path


def previous_path(path: Path, tag: str) -> Path:
    """Where an earlier version of ``path`` is kept: ``<scene>/previous/<tag>/<n>.png``."""
    return path.parent / "previous" / tag / path.name


def sidecar_path(image: Path) -> Path:
    """What an image is or was (step, fingerprint, sha256, prompt, seed, model, date):
    ``<n>.json`` beside it, for current outputs and those moved aside alike."""
    return image.with_suffix(".json")


def write_record(image: Path, data: dict[str, Any]) -> None:
    """The record beside a freshly written output: what lets a lost state recognise it."""
    _write_sidecar(sidecar_path(image), data)


def read_record(image: Path) -> dict[str, Any]:
    """The record beside ``image``, or {} when there is none (or it is not ours)."""
    try:
        data = json.loads(sidecar_path(image).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def move_aside(path: Path, tag: str, about: dict[str, Any] | None = None) -> Path | None:
    """Move an existing file out of the way (never delete it); return where it went. With
    ``about``, record it in a sidecar beside the moved file, so the folder still says what
    the image was when the state is gone."""
    if not path.exists():
        return None
    target = previous_path(path, tag)
    n = 1
    while target.exists():
        n += 1
        target = previous_path(path, f"{tag}-{n}")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)
    if about is not None:
        _write_sidecar(sidecar_path(target), {**about, "moved_at": iso(time.time())})
    sidecar_path(path).unlink(missing_ok=True)  # it spoke of the image just moved
    return target


def _umask() -> int:
    mask = os.umask(0o022)  # the umask can only be read by setting it: set, then restore
    os.umask(mask)
    return mask


# Read once, at import (before any worker thread exists): output files get the mode any
# program would give them (0644 under the usual umask 022), not mkstemp's private 0600, so a
# colleague or a shared folder can read them. Only the state file stays 0600.
FILE_MODE = 0o666 & ~_umask()


def _write_sidecar(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def iso(timestamp: float | None) -> str | None:
    """A time as ISO 8601 in UTC, to the second: how sidecars and index.json say when."""
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def write_atomically(path: Path, fill: Callable[[BinaryIO], str]) -> str:
    """Let ``fill`` write a temp file next to ``path`` and return its sha256, fsync it, then
    rename it into place. A crash leaves either the old state or the whole new file; a full
    disk leaves the old state too, and says which file it was writing (``DiskFull``)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:
        _raise_if_full(exc, path)
        raise
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            digest = fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        _raise_if_full(exc, path)
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest


def _raise_if_full(exc: OSError, path: Path) -> None:
    """A full disk is named for the file being written (not its temp file)."""
    if exc.errno == errno.ENOSPC:
        raise DiskFull(str(path)) from exc


def file_sha256(path: Path) -> str | None:
    return sha256_file(path) if path.exists() else None


def file_state(path: str | Path, sha256: str, *, size: int | None = None,
               recorded_at: float | None = None, verify: bool = False) -> FileState:
    """Whether the output at ``path`` still holds the file recorded with ``sha256``.

    Without ``verify``, a file of the recorded ``size`` not modified since ``recorded_at`` is
    taken as it was without reading it (a run looks at every output: hashing thousands of
    images would cost seconds); any other file is hashed. ``verify`` always hashes."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return FileState.MISSING
    if size is not None and stat.st_size != size:
        return FileState.ALTERED
    if not verify and size is not None and recorded_at is not None \
            and stat.st_mtime <= recorded_at:
        return FileState.OK
    return FileState.OK if sha256_file(Path(path)) == sha256 else FileState.ALTERED


class RecordedOutput(Protocol):
    """What ``output_facts`` reads of an output (an ArtifactRow, or a row of
    ``Store.current_outputs``)."""

    @property
    def step_id(self) -> int: ...
    @property
    def path(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def size(self) -> int | None: ...
    @property
    def created_at(self) -> float | None: ...
    @property
    def is_current(self) -> bool: ...


def output_facts(artifacts: Iterable[RecordedOutput], *,
                 verify: bool = False) -> dict[int, FileState]:
    """The state of each current output file, by the id of the step that made it: the facts
    the planner is given (it reads no file itself)."""
    return {a.step_id: file_state(a.path, a.sha256, size=a.size, recorded_at=a.created_at,
                                  verify=verify)
            for a in artifacts if a.is_current}
