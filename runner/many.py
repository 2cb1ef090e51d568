"""Several pipelines in one command (`bria-run a.yaml b.yaml`): each runs in a thread of its
own, with its own state, lease, outputs and display row, and all of them draw on the
command's one request budget (``runner.budgets``: in memory, or the studio's database).

A failure in one pipeline never stops the others. Ctrl-C stops them all the way it stops one
(no new work; in-flight requests finish). The command's exit code is the worst of theirs:
interrupted (130) over failed (1) over invalid (2) over done (0).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from runner.apis import rate_window
from runner.app import STATE_ENV, Target
from runner.app import run as run_one
from runner.budgets import Budgets
from runner.engine.context import RunOptions
from runner.engine.executor import Summary
from runner.errors import EXIT_FAILURE, BriaRunError
from runner.events import EventKind, Reporter

_SEVERITY = {0: 0, 2: 1, 1: 2, 130: 3}


def worst(codes: list[int]) -> int:
    return max(codes, key=lambda code: _SEVERITY.get(code, 2), default=0)


@dataclass
class Result:
    target: Target
    summary: Summary | None = None
    error: BriaRunError | None = None
    code: int = 0


def run_many(
    targets: list[Target], options_for: Callable[[Target], RunOptions],
    reporter_for: Callable[[Target], Reporter], *, command: str, rpm: int | None,
    wait_lock: float = 0.0, on_interrupt: Reporter | None = None,
) -> list[Result]:
    """Run every target together; the results in the order given."""
    from runner.engine.interrupts import graceful_interrupts

    state = targets[0].state or os.environ.get(STATE_ENV)
    budgets = Budgets(state, rpm, rate_window())
    results = [Result(t) for t in targets]
    stops = [threading.Event() for _ in targets]
    threads = [threading.Thread(target=_one, name=f"bria-run-{t.path.stem}", daemon=True,
                                args=(result, options_for(t), reporter_for(t), command,
                                      wait_lock, budgets, stop))
               for t, result, stop in zip(targets, results, stops, strict=True)]
    everyone = threading.Event()
    try:
        with graceful_interrupts(everyone, on_interrupt or reporter_for(targets[0])):
            for thread in threads:
                thread.start()
            while any(t.is_alive() for t in threads):
                if everyone.is_set():
                    for stop in stops:
                        stop.set()
                threads[[t.is_alive() for t in threads].index(True)].join(timeout=0.2)
    finally:
        budgets.close()
    return results


def final_lines(results: list[Result], *,
                shown: Callable[[str], str] = str) -> list[tuple[str, bool]]:
    """One line per pipeline, and whether it is an error (for stderr)."""
    lines = []
    for result in results:
        name = result.target.path
        if result.error is not None:
            lines.append((f"{name}: error: {result.error}", True))
        elif result.summary is not None:
            lines.append((f"{name}: {summary_line(result.summary, shown)}", False))
    return lines


def summary_line(summary: Summary, shown: Callable[[str], str] = str) -> str:
    """A run's last line: what it made, where the images are, and the gallery."""
    where = f" in {shown(summary.outputs)}{os.sep}" if summary.outputs else ""
    page = f"; gallery: {shown(summary.gallery)}" if summary.gallery else ""
    return f"done: {summary.images} new image(s){where}, {len(summary.done)} step(s) run{page}"


def _one(result: Result, options: RunOptions, reporter: Reporter, command: str,
         wait_lock: float, budgets: Budgets, stop: threading.Event) -> None:
    try:
        result.summary = run_one(result.target, options, reporter, command=command,
                                 wait_lock=wait_lock, budgets=budgets, stop=stop)
    except BriaRunError as exc:
        result.error, result.code = exc, exc.exit_code
    except Exception as exc:  # noqa: BLE001 - one pipeline's bug must not stop the others
        result.error = BriaRunError(f"internal error: {type(exc).__name__}: {exc}")
        result.code = EXIT_FAILURE
    if result.error is not None:
        reporter.emit(EventKind.NOTICE, message=f"error: {result.error}")
