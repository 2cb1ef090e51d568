"""The name a training image gets in its Bria dataset (``image_name``): readable, unique by
content, and the key uploads are reconciled by (the dataset's image list)."""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from runner.pipeline.spec import ImageRef

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def image_name(image: ImageRef, sha: str) -> str:
    """The name an upload gets in the dataset: readable, and unique by content (for a URL,
    by its text: bria-run never fetches it)."""
    if isinstance(image, str):
        last = PurePosixPath(urlsplit(image).path).name or "image"
        stem, suffix = PurePosixPath(last).stem, PurePosixPath(last).suffix.lower()
        safe = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:40] or "image"
        digest = hashlib.sha256(image.encode()).hexdigest()
        return f"{safe}-{digest[:12]}{suffix if suffix in IMAGE_SUFFIXES else ''}"
    return f"{image.stem}-{sha[:12]}{image.suffix.lower()}"
