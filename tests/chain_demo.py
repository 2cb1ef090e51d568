"""Run the whole training and generation chain of both API generations with the client only.

    python -m tests.chain_demo --url http://127.0.0.1:8765 --token sim-token

Against ``bria-run simulate`` (which trains in seconds when started with a short
``--training-seconds``) it then compares the simulator's ``/__sim/stats`` call counts
with the calls the client made, and exits 1 if they differ. Against the real Bria it
would spend credits: it refuses unless the URL is on loopback or ``--spend`` is given.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from PIL import Image, ImageDraw

from runner.bria.client import BriaClient
from runner.bria.jobs import poll_until_done
from runner.bria.result_links import RESULT_LINK
from runner.errors import TrainingFailed

PROMPT_SCENE = "Luna exploring the magical forest, looking curious"
PROMPT_TEXT = "Luna by a cozy fireplace, reading a book"


def make_images(folder: Path, count: int = 5, size: int = 320) -> list[Path]:
    """``count`` distinct PNG images of a simple character, ``size`` px square."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        image = Image.new("RGB", (size, size), (40 + 40 * n, 120, 200 - 30 * n))
        draw = ImageDraw.Draw(image)
        draw.ellipse((size // 4, size // 8, 3 * size // 4, size // 2), fill=(250, 220, 190))
        draw.rectangle((size // 3, size // 2, 2 * size // 3, 7 * size // 8), fill=(30, 60, 200))
        paths.append(folder / f"luna_{n}.png")
        image.save(paths[-1])
    return paths


def wait_trained(client: BriaClient, model_id: int, poll_every: float) -> dict[str, Any]:
    while True:
        model = client.get_model(model_id)
        if model.get("status") == "Completed":
            return model
        if model.get("status") in ("Failed", "Stopped"):
            raise TrainingFailed(model_id, str(model["status"]))
        time.sleep(poll_every)


def train(
    client: BriaClient, images: list[Path], name: str, version: str | None, poll_every: float
) -> int:
    """Project, dataset, identity, uploads, completion, model, training: the model id."""
    project = client.create_project(
        project_name=name,
        ip_type="defined_character",
        ip_medium="illustration",
        ip_name="Luna",
        ip_description="girl with blue hair",
    )
    dataset = client.create_dataset(project_id=project["id"], name=f"{name}-dataset")
    if version is None:
        client.update_dataset(dataset["id"], visual_schema=client.generate_visual_schema(images))
    else:
        prefix = client.generate_prefix(
            images[:3], ip_type="defined_character", ip_medium="illustration", ip_name="Luna"
        )
        client.update_dataset(dataset["id"], caption_prefix=prefix)
    for path in images:
        client.upload_image(dataset["id"], path, image_name=path.name)
    client.update_dataset(dataset["id"], status="completed")
    model = client.create_model(
        name=f"{name}-model",
        dataset_id=dataset["id"],
        training_mode="fully_automated",
        training_version=version,
    )
    client.start_training(model["id"])
    wait_trained(client, model["id"], poll_every)
    return int(model["id"])


def wait_job(client: BriaClient, request_id: str, poll_every: float) -> dict[str, Any]:
    """The engine's polling loop at a fixed cadence."""
    result = poll_until_done(lambda: client.get_status(request_id), request_id,
                             pause=time.sleep, interval=lambda: poll_every)
    assert result is not None  # nothing here asks it to stop
    return result


def fibo_chain(
    client: BriaClient, images: list[Path], scene: Path, out: Path, name: str, poll_every: float
) -> list[Path]:
    """The current (fibo) chain: a scene from a reference, and a text-only image."""
    model_id = train(client, images, name, None, poll_every)
    described = client.generate_structured_prompt(images=[scene], prompt=PROMPT_SCENE)
    structured = wait_job(client, described.request_id, poll_every)["structured_prompt"]
    jobs = [
        client.generate_tailored(
            tailored_model_id=model_id, structured_prompt=structured, prompt=PROMPT_SCENE, seed=42
        ),
        client.generate_tailored(
            tailored_model_id=model_id, prompt=PROMPT_TEXT, seed=7, aspect_ratio="16:9"
        ),
    ]
    urls = [wait_job(client, job.request_id, poll_every)["image_url"] for job in jobs]
    return [save(client, url, out / f"{name}-{n}.png") for n, url in enumerate(urls)]


def legacy_chain(
    client: BriaClient, images: list[Path], scene: Path, out: Path, name: str, poll_every: float
) -> list[Path]:
    """The legacy (light) chain: reimagine a scene, and text-to-image with guidance."""
    model_id = train(client, images, name, "light", poll_every)
    results = client.reimagine(
        prompt=PROMPT_SCENE,
        structure_image=scene,
        structure_ref_influence=0.6,
        tailored_model_id=model_id,
        seed=42,
    )
    results += client.text_to_image_tailored(
        model_id,
        prompt=PROMPT_TEXT,
        seed=7,
        guidance=[("controlnet_canny", scene, 0.5)],
    )
    urls = [url for result in results for url in result["urls"]]
    saved = []
    for n, url in enumerate(urls):
        client.wait_url(url, poll_every=poll_every)
        saved.append(save(client, url, out / f"{name}-{n}.png"))
    return saved


def save(client: BriaClient, url: str, path: Path) -> Path:
    with open(path, "wb") as out:
        client.download(url, out)
    return path


def api_calls(client: BriaClient) -> dict[str, int]:
    """The client's own count of API requests per endpoint (result links left out)."""
    return {
        key: int(row["requests"])
        for key, row in client.stats().items()
        if not key.endswith(RESULT_LINK)
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="API root, e.g. http://127.0.0.1:8765")
    parser.add_argument("--token", required=True)
    parser.add_argument("--name", default="chain-demo", help="prefix of the resources created")
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between polls")
    parser.add_argument("--spend", action="store_true", help="allow a non-loopback URL")
    args = parser.parse_args(argv)
    if urlsplit(args.url).hostname not in ("127.0.0.1", "localhost", "::1") and not args.spend:
        print("refusing to spend credits on a real API without --spend", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp, BriaClient(args.url, args.token) as client:
        folder = Path(tmp)
        images = make_images(folder / "training")
        scene = make_images(folder / "scene", count=1, size=512)[0]
        made = fibo_chain(client, images, scene, folder, f"{args.name}-fibo", args.poll)
        made += legacy_chain(client, images, scene, folder, f"{args.name}-light", args.poll)
        print(f"generated and downloaded {len(made)} images")
        return compare_with_simulator(args.url, args.token, api_calls(client))


def compare_with_simulator(url: str, token: str, mine: dict[str, int]) -> int:
    answer = httpx.get(f"{url.rstrip('/')}/__sim/stats", headers={"api_token": token})
    if answer.status_code != 200:
        print("not a simulator (no /__sim/stats): nothing to compare")
        return 0
    theirs = answer.json()["calls"]
    for key in sorted(set(mine) | set(theirs)):
        mark = "" if mine.get(key) == theirs.get(key) else "   <-- differs"
        print(f"{mine.get(key, 0):4d} {theirs.get(key, 0):4d}  {key}{mark}")
    return 0 if mine == theirs else 1


if __name__ == "__main__":
    sys.exit(main())
