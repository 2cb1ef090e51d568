"""B2: peak memory of a run with a 1 GB answer, or an endless download, in its way (issue 17).

The simulator runs in its own process with a test-only fault (runner/simulator/hostile.py):
``huge_answer`` makes every ``GET /v2/status`` answer a JSON document of 1 GB; ``result_fault:
endless`` makes every result link stream bytes without end. A whole `bria-run run` runs in a
fresh process (training chain, one scene); its own peak RSS (VmHWM) is the figure, and the
run must fail that scene with a clear reason. Baselines: for the answer, a plain
``httpx.get(...).json()`` of the same answer (what reading it whole costs); for the download,
the same run against a calm simulator. ``--smoke`` measures a 16 MB answer, and the download
alone in a child process (no back-off sleeps), to stay quick.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from tests.benchmarks.fixtures import small_image, text_scenes, write_pipeline
from tests.benchmarks.peak import peak_mb
from tests.benchmarks.simproc import INSTANT, SimProcess
from tests.benchmarks.table import Outcome, Row

GOAL_MB = 200.0
GIGABYTE, SMOKE_ANSWER = 1 << 30, 16 << 20


def _run_peak(root: Path, settings: dict[str, Any]) -> tuple[float, int, str]:
    """Peak RSS of `bria-run run` against a simulator with ``settings``; its code, stderr."""
    for i in range(5):
        small_image(root / "training" / f"{i:02d}.png", i)
    pipeline = write_pipeline(root, text_scenes(1))
    with SimProcess({**INSTANT, **settings}) as sim:
        env = {"BRIA_API_URL": sim.base_url, "BRIA_API_TOKEN": sim.token,
               "BRIA_RUN_JOB_POLL": "0.05"}
        return peak_mb(["runner", "run", str(pipeline), "-q", "--state",
                        str(root / "state.sqlite")], env=env, timeout=600)


def _download_peak(root: Path, settings: dict[str, Any]) -> tuple[float, int, str]:
    """Smoke: only the download of one result link, in a child without back-off sleeps
    (a whole run would sleep through its three back-offs); exit 1 when it failed."""
    from runner.bria.client import BriaClient
    from tests.chain_demo import make_images, train, wait_job

    with SimProcess(INSTANT) as sim:
        with BriaClient(sim.base_url, sim.token, rpm=None) as client:
            model = train(client, make_images(root / "training"), "b2", None, 0.05)
            job = client.generate_tailored(tailored_model_id=model, prompt="Luna", seed=1)
            link = wait_job(client, job.request_id, 0.05)["image_url"]
        sim.configure(settings)
        code = ("import sys, tempfile\nfrom runner.bria.client import BriaClient\n"
                f"client = BriaClient({sim.base_url!r}, {sim.token!r}, rpm=None,\n"
                "                    sleep=lambda _s: None)\n"
                "try:\n"
                f"    client.download({link!r}, tempfile.TemporaryFile())\n"
                "except Exception as exc:\n"
                "    print(f'scene/smoke: {exc}', file=sys.stderr)\n"
                "    sys.exit(1)\n")
        return peak_mb(["--code", code], timeout=600)


def _naive_read_peak(answer_bytes: int) -> float:
    with SimProcess({**INSTANT, "huge_answer": answer_bytes}) as sim:
        code = ("import httpx\n"
                f"httpx.get({sim.base_url + '/v2/status/x'!r}, timeout=600,\n"
                f"          headers={{'api_token': {sim.token!r}}}).json()\n")
        return peak_mb(["--code", code], timeout=600)[0]


def _row(name: str, mb: float, code: int, err: str, baseline: float, notes: str) -> Row:
    if code != 1:  # the run must fail that scene, saying why
        raise RuntimeError(f"the run with {name} exited {code}, not 1: {err[-2000:]}")
    reason = next((line.strip() for line in err.splitlines() if "scene/" in line), err[-200:])
    return Row(f"B2 run peak RSS, {name}", mb, "MB", baseline=baseline,
               goal=f"< {GOAL_MB:g} MB", met=mb < GOAL_MB, notes=f"{notes}; the run says: {reason}")


def run_b2(smoke: bool) -> Outcome:
    size = SMOKE_ANSWER if smoke else GIGABYTE
    shown = f"{size >> 20} MB answer" if smoke else "1 GB answer"
    with tempfile.TemporaryDirectory(prefix="bench-b2-") as tmp:
        root = Path(tmp)
        answer = _run_peak(root / "answer", {"huge_answer": size})
        measure = _download_peak if smoke else _run_peak
        endless = measure(root / "endless", {"result_fault": "endless"})
        calm = _download_peak(root / "calm", {})[0] if smoke else _run_peak(root / "calm", {})[0]
        naive = _naive_read_peak(size)
    rows = (
        _row(shown, *answer, naive, "every GET /v2/status answers it; baseline: httpx "
             "reading it whole"),
        _row("endless download", *endless, calm, "every result link streams without end; "
             + ("smoke: the download alone, baseline: a calm one" if smoke
                else "baseline: the same run, calm")),
    )
    detail = ("B2: peak RSS (VmHWM) of a fresh `bria-run run` process (training chain + one "
              "scene, simulator in its own process); JSON answers are read up to 4 MB, result "
              "downloads stream to a temp file up to 64 MB within 300 s a transfer, 3 quick retries.")
    return Outcome(rows, (detail,))
