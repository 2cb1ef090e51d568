"""Draw the example images of pipelines/luna*.yaml, deterministically, with Pillow.

Luna is a girl with blue twin-tailed hair, green eyes, pointed ears and a purple dress
with silver stars; the training set shows her in different poses and expressions on
plain backgrounds. Flat colours without anti-aliasing keep the PNGs small.

    python pipelines/draw_examples.py [OUT]   # (re)writes OUT, default pipelines/luna/
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 1024
HERE = Path(__file__).resolve().parent / "luna"
SKIN, HAIR, HAIR_DARK = (255, 221, 196), (40, 120, 230), (20, 70, 160)
DRESS, STAR, EYE, INK = (130, 60, 170), (225, 225, 240), (30, 160, 90), (40, 30, 40)
MOUTH = (200, 60, 80)


@dataclass(frozen=True)
class Pose:
    name: str
    background: tuple[int, int, int]
    x: int = 512  # centre of the face
    y: int = 400
    scale: float = 1.0
    tilt: float = 0.0  # degrees, counter-clockwise
    mouth: str = "smile"  # smile | open | flat | frown | o
    eyes: str = "open"  # open | closed | wink
    arms: str = "down"  # down | up | wave | hips


POSES = (
    Pose("01-front-smile", (250, 240, 200)),
    Pose("02-laugh", (210, 235, 250), mouth="open", eyes="closed"),
    Pose("03-wave", (225, 250, 215), x=470, arms="wave", tilt=6),
    Pose("04-surprised", (250, 215, 225), mouth="o", arms="up"),
    Pose("05-wink", (240, 230, 255), x=560, eyes="wink", tilt=-8),
    Pose("06-serious", (220, 220, 220), mouth="flat", arms="hips"),
    Pose("07-sad", (200, 215, 240), mouth="frown", tilt=10, y=430),
    Pose("08-close-up", (255, 235, 215), y=520, scale=1.5, mouth="open"),
    Pose("09-far", (215, 245, 240), y=330, scale=0.7, arms="wave"),
    Pose("10-cheer", (255, 250, 210), x=540, arms="up", mouth="open", eyes="closed", tilt=-5),
)


def ellipse(d: ImageDraw.ImageDraw, cx: float, cy: float, rx: float, ry: float,
            fill: tuple[int, int, int]) -> None:
    d.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=fill)


def draw_body(d: ImageDraw.ImageDraw, p: Pose, s: float) -> None:
    x, y = p.x, p.y
    d.polygon([(x - 60 * s, y + 150 * s), (x + 60 * s, y + 150 * s),
               (x + 190 * s, y + 560 * s), (x - 190 * s, y + 560 * s)], fill=DRESS)
    for sx, sy in ((-60, 320), (50, 260), (90, 450), (-110, 480), (0, 400)):
        star(d, x + sx * s, y + sy * s, 22 * s)
    d.rectangle((x - 25 * s, y + 110 * s, x + 25 * s, y + 160 * s), fill=SKIN)


def draw_arms(d: ImageDraw.ImageDraw, p: Pose, s: float) -> None:
    x, y = p.x, p.y
    arms = {"down": ((-150, 380), (150, 380)), "up": ((-280, -20), (280, -20)),
            "wave": ((-150, 380), (290, 60)), "hips": ((-110, 340), (110, 340))}[p.arms]
    for side, (ax, ay) in zip((-1, 1), arms):
        d.line([(x + side * 45 * s, y + 190 * s), (x + ax * s, y + ay * s)], fill=SKIN,
               width=int(34 * s))
        ellipse(d, x + ax * s, y + ay * s, 24 * s, 24 * s, SKIN)


def star(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float) -> None:
    d.polygon([(cx, cy - r), (cx + r * 0.3, cy - r * 0.3), (cx + r, cy), (cx + r * 0.3, cy + r * 0.3),
               (cx, cy + r), (cx - r * 0.3, cy + r * 0.3), (cx - r, cy), (cx - r * 0.3, cy - r * 0.3)],
              fill=STAR)


def draw_head(d: ImageDraw.ImageDraw, p: Pose, s: float) -> None:
    x, y = p.x, p.y
    for side in (-1, 1):  # twin tails behind the head
        ellipse(d, x + side * 190 * s, y + 90 * s, 70 * s, 170 * s, HAIR)
        ellipse(d, x + side * 150 * s, y - 60 * s, 40 * s, 40 * s, HAIR_DARK)
        d.polygon([(x + side * 125 * s, y - 10 * s), (x + side * 200 * s, y - 70 * s),
                   (x + side * 135 * s, y + 40 * s)], fill=SKIN)  # pointed ears
    ellipse(d, x, y, 130 * s, 150 * s, SKIN)
    d.chord((x - 140 * s, y - 170 * s, x + 140 * s, y + 40 * s), 180, 360, fill=HAIR)
    d.polygon([(x - 140 * s, y - 60 * s), (x - 60 * s, y - 70 * s), (x - 100 * s, y - 10 * s)],
              fill=HAIR)
    draw_face(d, p, s)


def draw_face(d: ImageDraw.ImageDraw, p: Pose, s: float) -> None:
    x, y = p.x, p.y + 20 * s
    for side in (-1, 1):
        ex = x + side * 50 * s
        closed = p.eyes == "closed" or (p.eyes == "wink" and side == 1)
        if closed:
            d.arc((ex - 25 * s, y - 20 * s, ex + 25 * s, y + 10 * s), 200, 340, fill=INK,
                  width=int(7 * s))
        else:
            ellipse(d, ex, y, 24 * s, 30 * s, (255, 255, 255))
            ellipse(d, ex, y + 4 * s, 16 * s, 22 * s, EYE)
            ellipse(d, ex, y + 6 * s, 7 * s, 10 * s, INK)
    my = y + 70 * s
    box = (x - 40 * s, my - 25 * s, x + 40 * s, my + 25 * s)
    if p.mouth == "smile":
        d.arc(box, 20, 160, fill=MOUTH, width=int(8 * s))
    elif p.mouth == "open":
        d.chord(box, 0, 180, fill=MOUTH)
    elif p.mouth == "frown":
        d.arc((box[0], my + 5 * s, box[2], my + 55 * s), 200, 340, fill=MOUTH, width=int(8 * s))
    elif p.mouth == "o":
        ellipse(d, x, my + 5 * s, 16 * s, 20 * s, MOUTH)
    else:
        d.line([(x - 30 * s, my), (x + 30 * s, my)], fill=MOUTH, width=int(8 * s))


def luna(p: Pose) -> Image.Image:
    layer = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    draw_body(d, p, p.scale)
    draw_head(d, p, p.scale)
    draw_arms(d, p, p.scale)
    if p.tilt:
        layer = layer.rotate(p.tilt, resample=Image.Resampling.NEAREST, center=(p.x, p.y + 200))
    image = Image.new("RGB", (SIZE, SIZE), p.background)
    image.paste(layer, (0, 0), layer)
    return image


def forest() -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE), (170, 220, 250))
    d = ImageDraw.Draw(image)
    d.rectangle((0, 700, SIZE, SIZE), fill=(90, 170, 70))
    for i, x in enumerate(range(40, SIZE, 160)):
        h = 380 + (i * 73) % 160
        d.rectangle((x + 50, 700 - 60, x + 80, 760), fill=(110, 70, 40))
        d.polygon([(x - 10, 680), (x + 140, 680), (x + 65, 680 - h)], fill=(30, 110 + i * 6, 50))
    return image


def beach() -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE), (140, 205, 250))
    d = ImageDraw.Draw(image)
    ellipse(d, 820, 180, 80, 80, (255, 220, 80))
    d.rectangle((0, 520, SIZE, 720), fill=(40, 130, 200))
    for x in range(0, SIZE, 128):
        d.chord((x, 690, x + 128, 750), 180, 360, fill=(240, 245, 250))
    d.rectangle((0, 720, SIZE, SIZE), fill=(240, 215, 160))
    return image


def castle() -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE), (190, 200, 240))
    d = ImageDraw.Draw(image)
    ellipse(d, 512, 1100, 760, 420, (110, 160, 90))
    d.rectangle((300, 420, 724, 760), fill=(170, 170, 180))
    for x in range(300, 724, 60):
        d.rectangle((x, 390, x + 30, 420), fill=(170, 170, 180))
    for tx in (250, 690):
        d.rectangle((tx, 330, tx + 84, 760), fill=(150, 150, 165))
        d.polygon([(tx - 15, 330), (tx + 99, 330), (tx + 42, 200)], fill=(150, 50, 70))
    d.chord((460, 600, 564, 760), 180, 360, fill=(80, 60, 50))
    d.rectangle((460, 680, 564, 760), fill=(80, 60, 50))
    return image


def castle_depth() -> Image.Image:
    """A depth map of the castle scene: near is bright, far is dark."""
    image = Image.new("L", (SIZE, SIZE), 20)
    d = ImageDraw.Draw(image)
    for i, top in enumerate(range(700, SIZE, 54)):
        d.rectangle((0, top, SIZE, SIZE), fill=120 + i * 20)
    d.rectangle((250, 330, 774, 760), fill=90)
    return image


def save(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if image.mode != "L":
        image = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    image.save(path, optimize=True)


def main(out: Path = HERE) -> None:
    for pose in POSES:
        save(luna(pose), out / "training" / f"{pose.name}.png")
    for name, draw in (("forest", forest), ("beach", beach), ("castle", castle)):
        save(draw(), out / "scenes" / f"{name}.png")
    save(castle_depth(), out / "guidance" / "castle-depth.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
