"""Resolve the files a pipeline names and check each image, with positions.

Training images may be files, folders (their .jpg/.jpeg/.png/.webp files) or globs,
relative to the pipeline file; globs stay inside the project root and their work is bounded
(``runner.pipeline.globs``). Every entry must match something; every image must be
one Bria accepts (see ``runner.pipeline.images``); the set must fit Bria's limits and hold no
two images with the same content. Scene references and guidance images get the same
content checks. Any of them may instead be an https:// URL: it is passed to Bria as it is
(bria-run never fetches it, so its content is Bria's to judge); other schemes are refused.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from runner.errors import Problem
from runner.pipeline import globs
from runner.pipeline.globs import GlobTooWide, expand, is_glob, list_folder, reach_problem
from runner.pipeline.images import GOOD_SIDE, MIN_SIDE, ImageInfo, ImageRejected, inspect_image
from runner.pipeline.problems import format_path
from runner.pipeline.spec import ImageRef
from runner.pipeline.yamlpos import Document, Path_

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MAX_TRAINING = 200  # Bria answers 409 past 200 images in a dataset
MIN_TRAINING = {"fibo": 5, "legacy": 1}  # completing a fibo dataset needs 5
# Best practice, as warnings: the user's guide says "15-50 images for light, 5-30 for
# max"; for fibo it names no range of its own, and its troubleshooting says "15-30
# images is optimal for most cases".
ADVISED = {"light": (15, 50), "max": (5, 30), "fibo": (15, 30)}
ADVICE_SOURCE = {
    "light": "the user's guide advises 15-50 images for light",
    "max": "the user's guide advises 5-30 images for max",
    "fibo": "the user's guide finds 15-30 images optimal for most cases",
}


class FileChecker:
    """Collects problems about named files while resolving them."""

    def __init__(self, doc: Document, file: str, base: Path, root: Path) -> None:
        self.doc, self.file, self.base, self.root = doc, file, base, root
        self.problems: list[Problem] = []
        self.hashes: dict[Path, str] = {}  # sha256 of every accepted image: the plan needs them
        self.training: tuple[ImageRef, ...] = ()
        self.captions: dict[ImageRef, str] = {}  # of the {file, caption} entries

    def add(self, at: Path_, message: str, hint: str | None = None,
            severity: str = "error") -> None:
        line, col = self.doc.pos(at)
        self.problems.append(Problem(self.file, line, col, format_path(at), message, hint,
                                     severity))

    def show(self, path: Path) -> str:
        try:
            return f"`{path.relative_to(self.base)}`"
        except ValueError:
            return f"`{path}`"

    def training_images(self, entries: str | list[Any], *, version: str,
                        increase_resolution: bool) -> tuple[ImageRef, ...]:
        """Resolved, sorted, de-duplicated training images; problems recorded on the way.
        An entry ``{file, caption}`` names one image and records its caption."""
        at: Path_ = ("character", "images")
        listed = [(at, entries)] if isinstance(entries, str) else [
            ((*at, i), entry) for i, entry in enumerate(entries)]
        origin: dict[ImageRef, Path_] = {}
        for where, entry in listed:
            if isinstance(entry, dict):
                self._captioned(entry, (*where, "file"), origin)
                continue
            for found in self._expand(entry, where):
                origin.setdefault(found, where)
        paths = tuple(sorted(origin, key=str))
        self._count(len(paths), at, version)
        seen: dict[str, Path] = {}
        small: list[ImageInfo] = []
        for path in paths:
            if isinstance(path, str):
                continue  # a URL: Bria fetches and checks it
            info = self.image(path, origin[path], training=True,
                              increase_resolution=increase_resolution)
            if info is None:
                continue
            if info.sha256 in seen:
                self.add(origin[path], f"{self.show(path)} has the same content as "
                         f"{self.show(seen[info.sha256])}", "remove one of them")
            seen.setdefault(info.sha256, path)
            if MIN_SIDE <= info.short_side < GOOD_SIDE and increase_resolution:
                small.append(info)
        self._small(small, len(paths), at)
        return paths

    def _small(self, small: list[ImageInfo], count: int, at: Path_) -> None:
        """Images Bria will upscale: one line for all of them, naming the first few."""
        if not small:
            return
        names = ", ".join(f"{self.show(i.path)} ({i.width}x{i.height})" for i in small[:3])
        more = f" and {len(small) - 3} more" if len(small) > 3 else ""
        self.add(at, f"{len(small)} of {count} training images are under {GOOD_SIDE} px on the "
                 f"short side: {names}{more}; Bria will upscale them",
                 "larger originals train better", severity="warning")

    def single(self, value: str, at: Path_) -> ImageRef | None:
        """A reference or guidance image: an https URL, or a file that exists and is
        acceptable."""
        if is_url_like(value):
            return self._url(value, at)
        path = self._absolute(value)
        if not os.path.lexists(path):
            self._missing(path, at)
            return None
        self.image(path, at, training=False, increase_resolution=True)
        return path

    def image(self, path: Path, at: Path_, *, training: bool,
              increase_resolution: bool) -> ImageInfo | None:
        try:
            info = inspect_image(path)
        except ImageRejected as exc:
            self.add(at, f"{self.show(path)} {exc.reason}", exc.hint)
            return None
        self.hashes[path] = info.sha256
        size = f"{info.width}x{info.height}"
        if info.short_side < MIN_SIDE:
            self.add(at, f"{self.show(path)} is {size}; Bria needs at least {MIN_SIDE} px "
                     "on the short side")
        elif training and info.short_side < GOOD_SIDE and not increase_resolution:
            self.add(at, f"{self.show(path)} is {size}; with increase_resolution off Bria "
                     f"needs at least {GOOD_SIDE} px on the short side",
                     "use larger images or set increase_resolution: true")
        return info

    def _captioned(self, entry: dict[str, Any], at: Path_,
                   origin: dict[ImageRef, Path_]) -> None:
        file = str(entry["file"])
        if not is_url_like(file) and (is_glob(file) or self._absolute(file).is_dir()):
            self.add(at, f"`{file}` is a {'glob' if is_glob(file) else 'folder'}; an entry "
                     "with a caption names one image", "list the image's own file")
            return
        for found in self._expand(file, at):
            origin.setdefault(found, at)
            self.captions[found] = caption_text(entry["caption"])

    def _url(self, value: str, at: Path_) -> str | None:
        problem = url_problem(value)
        if problem is not None:
            self.add(at, problem, "use its https:// address, or download it and name the file")
            return None
        return value

    def _expand(self, entry: str, at: Path_) -> list[ImageRef]:
        if is_url_like(entry):
            url = self._url(entry, at)
            return [url] if url is not None else []
        path = self._absolute(entry)
        try:
            if is_glob(entry):
                return list(self._glob(entry, at))
            if path.is_dir():
                files = list_folder(path, IMAGE_SUFFIXES)
                if not files:
                    self.add(at, f"folder `{entry}` holds no .jpg, .jpeg, .png or .webp file")
                return list(files)
        except GlobTooWide:
            self.add(at, f"`{entry}` looks at more than {globs.MAX_ENTRIES} entries; stopped "
                     "there",
                     "name the folder of the images, or a narrower glob such as "
                     "`training/*.png`")
            return []
        if not os.path.lexists(path):
            self._missing(path, at)
            return []
        return [path]

    def _glob(self, entry: str, at: Path_) -> list[Path]:
        if reach_problem(entry, self.base, self.root) is not None:
            return []  # reported by the rules already, before anything was listed
        files = expand(entry, self.base)
        if not files:
            self.add(at, f"`{entry}` matches no file")
        return files

    def _count(self, count: int, at: Path_, version: str) -> None:
        family = "fibo" if version == "fibo" else "legacy"
        least = MIN_TRAINING[family]
        if count > MAX_TRAINING:
            self.add(at, f"{count} training images; Bria accepts at most {MAX_TRAINING}")
        elif 0 < count < least:
            self.add(at, f"{count} training image{'s' if count != 1 else ''}; fibo needs "
                     f"at least {least}", "add images, or train a legacy version (light, max)")
        elif count:
            low, high = ADVISED.get(version, ADVISED["fibo"])
            if not low <= count <= high:
                self.add(at, f"{count} training images; {ADVICE_SOURCE.get(version, '')}",
                         "a best practice, not a rule",
                         severity="warning")

    def _absolute(self, value: str) -> Path:
        """Absolute, and resolved when it is a file: a link to a FIFO or a device keeps its
        own name, for the message that refuses it."""
        path = Path(value).expanduser()
        path = Path(os.path.normpath(path if path.is_absolute() else self.base / path))
        return path.resolve() if path.is_file() else path

    def _missing(self, path: Path, at: Path_) -> None:
        hint = None
        if path.parent.is_dir():
            names = [p.name for p in path.parent.iterdir()]
            near = difflib.get_close_matches(path.name, names, n=1, cutoff=0.6)
            hint = f"did you mean `{near[0]}`?" if near else None
        self.add(at, f"{self.show(path)} does not exist", hint)


def is_url_like(value: str) -> bool:
    """``scheme://...``: a URL, never a path (a Windows drive ``C:\\`` has no ``//``)."""
    scheme, sep, _ = value.partition("://")
    return bool(sep) and scheme.isascii() and scheme.replace("+", "").replace("-", "") \
        .replace(".", "").isalnum()


def url_problem(value: str) -> str | None:
    """Why a URL cannot be passed to Bria, or None for a usable https:// URL."""
    parts = urlsplit(value)
    if parts.scheme.lower() != "https":
        return (f"`{value}` is a {parts.scheme}:// URL; only https:// URLs are passed to "
                "Bria (bria-run never fetches a URL itself)")
    if not parts.hostname:
        return f"`{value}` names no host"
    return None


def caption_text(caption: Any) -> str:
    """A caption as Bria takes it: a mapping as a JSON object string, text as it is."""
    if isinstance(caption, dict):
        return json.dumps(caption, sort_keys=True, ensure_ascii=False)
    return str(caption)
