"""The gallery page: ``index.html`` rendered from the data of ``runner.display.gallery``.

One self-contained static file: inline CSS and one inline script (allowed by its hash in
the page's Content-Security-Policy, so nothing else could run even if a text slipped
through), no fonts, no requests but the thumbnails beside it, relative links only. Every
text from the pipeline file or the state goes through ``_e`` (HTML-escaped).
"""

from __future__ import annotations

import base64
import hashlib
import html
from typing import Any
from urllib.parse import quote

from runner.display.page_assets import SCRIPT, STYLE

FOOTER = ('<footer><p>Keys: <kbd>j</kbd> next scene, <kbd>k</kbd> previous scene. '
          "Click an image for the full-size file. Data: "
          '<a href="index.json">index.json</a>.</p></footer>')
NAV_OPEN = 40  # more scenes than this: the list starts folded, so the first scenes show at once
ROUTES = {"text": "text prompt", "reference": "scene reference", "guidance": "guidance image"}


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _href(rel: str) -> str:
    return _e(quote(rel, safe="/"))


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    # img-src 'self' covers a page served over HTTP; file: covers it opened from disk.
    return (f"default-src 'none'; img-src 'self' file:; style-src 'unsafe-inline'; "
            f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")


def render_page(data: dict[str, Any]) -> str:
    """The whole page as text."""
    name = data["pipeline"]["name"]
    return "\n".join([
        "<!doctype html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_csp())}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="color-scheme" content="light dark">',
        f"<title>{_e(name)}: bria-run gallery</title>", f"<style>{STYLE}</style>", "</head>",
        f'<body data-pipeline="{_e(name)}">', _header(data),
        '<main id="scenes">', *(_scene(s) for s in data["scenes"]), "</main>",
        FOOTER,
        f"<script>{SCRIPT}</script>", "</body>", "</html>", ""])


def _header(data: dict[str, Any]) -> str:
    pipeline, character, model = data["pipeline"], data["character"], data["model"]
    counts = data["counts"]
    strip = "".join("<li>" + _thumb(p, alt=f"training image {p.get('name', '')}") + "</li>"
                    for p in character["training_images"])
    described = ", ".join(_e(x) for x in (character.get("description"), character["type"],
                                           character["medium"]) if x)
    trained = f", trained {_e(_when(model['trained_at']))}" if model.get("trained_at") else ""
    model_text = (f"model {_e(model['id'])} ({_e(model['version'])}, {_e(model['status'])}"
                  f"{trained})" if model.get("id") is not None
                  else f"model: {_e(model['status'])}")
    tally = (f"{counts['scenes']} scene(s), {counts['images']} image(s), "
             f"{counts['failed']} failed, {counts['pending']} pending, "
             f"{counts['previous']} earlier version(s)")
    nav = "".join(
        f'<li><a href="#{_e(_anchor(s["name"]))}">{_e(s["name"])}</a>'
        + (f' <span class="badge {_e(s["state"])}">{_e(s["state"])}</span>'
           if s["state"] != "done" else "") + "</li>" for s in data["scenes"])
    return (
        "<header>"
        f'<h1>{_e(pipeline["name"])} <small>{_e(pipeline["file"])}</small></h1>'
        f'<section class="character" data-character="{_e(character["name"])}">'
        f'<h2>{_e(character["name"])}</h2><p>{described}</p>'
        f'<ul class="strip">{strip}</ul></section>'
        f'<p class="facts" data-model="{_e(model.get("id") or "")}">{model_text}</p>'
        f'<p class="facts" data-counts>{tally}. Page written {_e(_when(data["generated_at"]))}.</p>'
        f'<nav aria-label="Scenes"><details{" open" if len(data["scenes"]) <= NAV_OPEN else ""}>'
        f'<summary>{len(data["scenes"])} scene(s)</summary><ol>{nav}</ol></details></nav>'
        "</header>")


def _anchor(name: str) -> str:
    return f"scene-{name}"


def _when(stamp: str | None) -> str:
    return (stamp or "").replace("T", " ").replace("Z", " UTC")


def _thumb(picture: dict[str, Any] | None, *, alt: str, link: bool = False) -> str:
    if picture is None:
        return ""
    if picture.get("thumb"):
        inner = (f'<img src="{_href(picture["thumb"])}" width="{picture["width"]}" '
                 f'height="{picture["height"]}" loading="lazy" decoding="async" '
                 f'alt="{_e(alt)}">')
    else:
        inner = f'<span class="nothumb">{_e(alt)}</span>'
    if link and picture.get("file"):
        return f'<a href="{_href(picture["file"])}">{inner}</a>'
    return inner


def _scene(scene: dict[str, Any]) -> str:
    name, state = scene["name"], scene["state"]
    marker = f' data-state="{_e(state)}"' if state in ("failed", "pending") else ""
    inputs = ""
    if scene["reference"]:
        inputs += _input_figure(scene["reference"], f"scene reference of {name}", "reference")
    for g in scene["guidance"]:
        inputs += _input_figure(g["image"], f"{g['method']} guidance of {name}",
                                f"{g['method']}, scale {g['scale']}")
    current = "".join(_variation(scene, v) for v in scene["variations"])
    earlier = "".join(_previous(scene, p) for p in scene["previous"])
    versions = f'<div class="current"><h3>Current</h3><div class="grid">{current}</div></div>'
    if earlier:
        versions += (f'<div class="earlier"><h3>Earlier versions</h3>'
                     f'<div class="grid">{earlier}</div></div>')
    return (
        f'<section class="scene" id="{_e(_anchor(name))}" data-scene="{_e(name)}"{marker} '
        f'tabindex="-1" aria-labelledby="{_e(_anchor(name))}-title">'
        f'<h2 id="{_e(_anchor(name))}-title">{_e(name)} '
        f'<span class="badge route">{_e(ROUTES.get(scene["route"], scene["route"]))}</span>'
        + (f' <span class="badge {_e(state)}">{_e(state)}</span>' if state != "done" else "")
        + "</h2>"
        f'<div class="about"><div><p class="prompt">{_e(scene["prompt"])}</p>'
        f'{_settings(scene["settings"])}{_failure(scene)}</div>'
        + (f'<div class="inputs">{inputs}</div>' if inputs else "") + "</div>"
        + f'<div class="versions{" side" if earlier else ""}">{versions}</div></section>')


def _settings(settings: dict[str, Any]) -> str:
    if not settings:
        return ""
    items = "".join(f"<div><dt>{_e(k.replace('_', ' '))}</dt><dd>{_e(v)}</dd></div>"
                    for k, v in settings.items())
    return f'<dl class="settings">{items}</dl>'


def _failure(scene: dict[str, Any]) -> str:
    if scene["state"] != "failed":
        return ""
    return (f'<div class="error" role="note"><p>Failed: {_e(scene["error"])}</p>'
            f'<p>Retry with <code>{_e(scene["retry"])}</code></p></div>')


def _input_figure(picture: dict[str, Any] | None, alt: str, caption: str) -> str:
    if picture is None:
        return ""
    return (f'<figure class="input">{_thumb(picture, alt=alt)}'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _variation(scene: dict[str, Any], v: dict[str, Any]) -> str:
    n, state = v["variation"], v["state"]
    hooks = f'data-variation="{_e(n)}" data-seed="{_e(v["seed"])}"'
    alt = f"{scene['name']}, variation {n}: {scene['prompt']}"
    if state == "done":
        return (f'<figure class="image" {hooks} data-sha256="{_e(v["sha256"])}">'
                f"{_thumb(v, alt=alt, link=True)}"
                f"<figcaption>#{_e(n)} · seed {_e(v['seed'])} · "
                f"{_e(_when(v.get('created_at')))}</figcaption></figure>")
    label = {"failed": "failed", "missing": "file missing"}.get(state, "pending")
    return (f'<figure class="image empty" {hooks} data-state="{_e(state)}">'
            f'<div class="placeholder">{_e(label)}</div>'
            f"<figcaption>#{_e(n)} · seed {_e(v['seed'])}</figcaption></figure>")


def _previous(scene: dict[str, Any], p: dict[str, Any]) -> str:
    prompt = p.get("prompt")
    said = ("same prompt" if prompt == scene["prompt"] else
            f"prompt: {prompt}" if prompt else "prompt not recorded")
    alt = f"{scene['name']}, earlier version of variation {p['variation']}: {prompt or ''}"
    return (f'<figure class="image" data-version="previous" data-variation="{_e(p["variation"])}"'
            f' data-seed="{_e(p.get("seed") if p.get("seed") is not None else "")}"'
            f' data-sha256="{_e(p["sha256"])}">{_thumb(p, alt=alt, link=True)}'
            f"<figcaption>#{_e(p['variation'])} · seed {_e(p.get('seed', '?'))} · "
            f"{_e(_when(p.get('created_at')))}<br><span class=\"was\">{_e(said)}</span>"
            "</figcaption></figure>")
