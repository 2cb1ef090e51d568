"""A validated pipeline file as frozen dataclasses.

Everything downstream (planner, engine) reads these, never the raw YAML. Defaults are
already applied and scene-level values already merged with ``generation.defaults``, so
a ``Scene`` says exactly what will be sent. Paths are absolute and resolved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

LEGACY_VERSIONS = ("light", "max")

# An image the pipeline names: a local file (absolute, resolved) or an https:// URL (str),
# which is passed to Bria as it is and never fetched by bria-run.
ImageRef = Path | str


def is_url(image: ImageRef) -> bool:
    return isinstance(image, str)


def image_key(image: ImageRef, hashes: Mapping[Path, str]) -> str:
    """What change detection compares: a file's sha256, or a URL's own text."""
    return f"url:{image}" if isinstance(image, str) else hashes[image]


@dataclass(frozen=True)
class Identity:
    """How the character's identity text is obtained.

    ``mode == "auto"``: ask Bria (fibo: generate_visual_schema; legacy: generate_prefix)
    from ``samples`` of the training images. ``mode == "given"``: use ``text`` as is
    (the visual schema JSON string for fibo, the caption prefix for legacy).
    """

    mode: str  # "auto" | "given"
    text: str | None = None
    samples: int = 6


@dataclass(frozen=True)
class Character:
    name: str  # ip_name
    type: str  # ip_type
    medium: str  # ip_medium: photography | illustration
    images: tuple[ImageRef, ...]  # resolved, sorted, de-duplicated training images
    identity: Identity
    description: str | None = None  # ip_description
    increase_resolution: bool = True
    content_moderation: bool = False
    # (image, caption) for the training images given as {file, caption}: fibo's captions are
    # JSON object strings (Bria: "a valid JSON structure"), legacy ones plain text.
    captions: tuple[tuple[ImageRef, str], ...] = ()

    def caption_of(self, image: ImageRef) -> str | None:
        return next((text for of, text in self.captions if of == image), None)


@dataclass(frozen=True)
class Expert:
    rank: int | None = None
    learning_rate: float | None = None
    total_training_steps: int | None = None
    lr_scheduler: str | None = None
    checkpoint_interval: int | None = None
    lr_warmup_steps: int | None = None

    def as_params(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Training:
    version: str = "fibo"  # fibo | light | max
    mode: str = "fully_automated"  # fully_automated | expert
    expert: Expert | None = None
    poll_every: float = 120.0  # seconds
    model_id: int | None = None  # reuse an already trained model: skip training


@dataclass(frozen=True)
class Guidance:
    """A ControlNet guidance image (legacy versions only)."""

    method: str  # controlnet_canny | controlnet_depth | controlnet_recoloring | controlnet_color_grid
    image: ImageRef
    scale: float = 1.0


@dataclass(frozen=True)
class Scene:
    name: str  # safe folder name, unique
    prompt: str
    line: int = 0  # where the scene starts in the file, for messages
    reference: ImageRef | None = None
    structure_strength: float | None = None  # legacy: structure_ref_influence
    aspect_ratio: str = "1:1"
    variations: int = 1
    seed: int | None = None  # None: derived from pipeline and scene name
    negative_prompt: str | None = None
    model_influence: float | None = None  # fibo: tailored_model_influence; legacy: model_influence
    guidance_scale: int | None = None  # fibo only, 3-5 (an integer, as Bria publishes it)
    steps_num: int | None = None  # fibo only, 20-50
    guidance: tuple[Guidance, ...] = ()


@dataclass(frozen=True)
class Prices:
    """Credit estimates, from Bria's guide; the user may override them in the file."""

    training: float = 80.0
    image: float = 3.0


@dataclass(frozen=True)
class Pipeline:
    path: Path  # the pipeline file itself, absolute
    name: str  # names the state and the remote resources
    character: Character
    training: Training
    scenes: tuple[Scene, ...]
    outputs: Path  # absolute; every output path stays inside it
    concurrency: int | None = None  # None: auto (the flow control follows the budget)
    prices: Prices = Prices()
    version: int = 1
    # sha256 of every image the file names, measured while validating (each image is read
    # once per run): the planner's fingerprints use them.
    image_hashes: Mapping[Path, str] = field(default_factory=dict, compare=False)

    @property
    def is_legacy(self) -> bool:
        return self.training.version in LEGACY_VERSIONS

    def scene(self, name: str) -> Scene:
        return _by_name(self.scenes)[name]


# Every scene step looks its scene up: a scan of 2,000 scenes cost 0.1-0.3 ms a step. Keyed
# by the tuple's identity (hashing 2,000 scenes would cost more than the scan).
_INDEXES: dict[int, tuple[tuple[Scene, ...], dict[str, Scene]]] = {}


def _by_name(scenes: tuple[Scene, ...]) -> dict[str, Scene]:
    known = _INDEXES.get(id(scenes))
    if known is None or known[0] is not scenes:
        if len(_INDEXES) > 8:
            _INDEXES.clear()
        known = _INDEXES[id(scenes)] = (scenes, {scene.name: scene for scene in scenes})
    return known[1]
