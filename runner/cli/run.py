"""`bria-run run` (and `bria-run FILE...`): one pipeline or several under one budget."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from runner.cli.base import (
    Duration,
    debug_option,
    fail,
    main,
    pipelines_argument,
    simulate_option,
    state_option,
    usage,
)


@main.command()
@pipelines_argument
@simulate_option
@state_option
@click.option("--retrain", is_flag=True,
              help="Train a new model when the old one is stale (training images, character or "
                   "training settings changed) or its training failed. Spends training credits.")
@click.option("--keep-model", is_flag=True,
              help="Go on with the already trained model even though its inputs changed.")
@click.option("--restore", is_flag=True,
              help="Also restore output files altered since they were made (each altered file "
                   "is moved aside under previous/, never deleted). Missing files are always "
                   "restored: from the recorded result link while valid, else made again with "
                   "the same seed (a cost: see `plan`).")
@click.option("--rpm", type=click.IntRange(1, 100000), default=60, envvar="BRIA_RUN_RPM",
              show_default=True, help="Requests per minute per endpoint (your Bria plan's limit).")
@click.option("--job-poll", type=click.FloatRange(0.05, 60), envvar="BRIA_RUN_JOB_POLL",
              help="Seconds between status polls of a generation job (default 2; 0.5 with "
                   "--simulate). Polls count against the rate limit.")
@click.option("--wait-lock", type=click.FloatRange(0), default=0.0, envvar="BRIA_RUN_WAIT_LOCK",
              metavar="SECONDS", help="When another runner (another machine) holds the "
              "pipeline, wait up to this long for it to finish or its lease to lapse, instead "
              "of refusing at once.")
@click.option("--job-timeout", type=Duration(), default="30m", show_default=True,
              metavar="DURATION",
              help="A generation job still in progress after this (30s, 10m, 1h, or seconds) "
                   "fails its scene; the other scenes go on and the next run sends it once more.")
@click.option("--outage-tolerance", type=Duration(), default="30m", show_default=True,
              metavar="DURATION", envvar="BRIA_RUN_OUTAGE_TOLERANCE",
              help="How long Bria may be unreachable (no answer, 5xx, 429) before the run stops, "
                   "resumable; meanwhile requests are retried at most 5 minutes apart and a "
                   "training goes on at Bria. Like 90s, 30m, 2h.")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors and the final line.")
@debug_option
def run(pipelines: tuple[Path, ...], simulate: bool, state: str | None, retrain: bool,
        keep_model: bool, restore: bool, rpm: int, job_poll: float | None, wait_lock: float,
        job_timeout: float, outage_tolerance: float, as_json: bool,
        quiet: bool) -> None:
    """Run PIPELINE: train the character (once) and generate every scene.

    Safe to run again at any moment: it resumes where it stopped, re-attaches to a training
    in progress, and on an unchanged, finished file it does nothing. Ctrl-C stops cleanly
    (exit 130); run the same command again to continue. `bria-run PIPELINE` is short for
    `bria-run run PIPELINE`.

    Several files run together, each with its own state, lock and outputs, under one request
    budget (--rpm per endpoint for all of them; with a PostgreSQL --state, for every runner
    that uses that database). A failure in one does not stop the others; the exit code is
    the worst of theirs.
    """
    if retrain and keep_model:
        fail(usage("--retrain and --keep-model contradict each other: choose one"))
    from runner.app import Target
    from runner.app import run as run_pipeline
    from runner.engine.context import RunOptions

    pipeline = pipelines[0]
    command = "bria-run " + " ".join(sys.argv[1:]) if sys.argv[1:] else f"bria-run {pipeline}"

    def options_for(target: Target) -> RunOptions:
        return RunOptions(retrain=retrain, keep_model=keep_model, restore=restore,
                          resume_command=resume_command(target.path, simulate, state),
                          poll_every=2.0 if simulate else None,
                          job_poll=job_poll or (0.5 if simulate else 2.0),
                          job_timeout=job_timeout, outage_tolerance=outage_tolerance)

    unique = {p.resolve(): p for p in reversed(pipelines)}  # a file named twice runs once
    pipelines = tuple(p for p in pipelines if unique.get(p.resolve()) is p)
    if len(pipelines) > 1:
        _run_several([Target(p, state, simulate) for p in pipelines], options_for, command,
                     rpm, wait_lock, as_json, quiet)
        return
    options = options_for(Target(pipeline, state, simulate))
    reporter = reporter_for(as_json, quiet)
    try:
        summary = run_pipeline(Target(pipeline, state, simulate), options, reporter,
                               command=command, rpm=rpm, wait_lock=wait_lock)
    finally:
        reporter.close()
    if not as_json:
        click.echo(final_line(summary))


def _run_several(targets: list[Any], options_for: Any, command: str, rpm: int,
                 wait_lock: float, as_json: bool, quiet: bool) -> None:
    """Several pipelines at once (``runner.many``): one display row (or line prefix) each,
    one final line each, the worst exit code."""
    from runner.display.rows import Board
    from runner.many import final_lines, run_many, worst

    board = Board(as_json=as_json, quiet=quiet, live=sys.stderr.isatty())
    try:
        results = run_many(targets, options_for, board.reporter_for, command=command, rpm=rpm,
                           wait_lock=wait_lock)
    finally:
        board.close()
    for line, is_error in final_lines(results, shown=relative_path):
        if is_error or not as_json:
            click.echo(line, err=is_error)
    code = worst([r.code for r in results])
    if any(r.error is not None and r.error.abandoned_workers for r in results):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def final_line(summary: Any) -> str:
    from runner.many import summary_line

    return summary_line(summary, relative_path)


def resume_command(pipeline: Path, simulate: bool, state: str | None) -> str:
    if state and "://" in state:
        from runner.state.postgres import shown

        state = shown(state)  # never a password in a printed command
    return f"bria-run {pipeline}" + (" --simulate" if simulate else "") + (
        f" --state {state}" if state else "")


def relative_path(path: str) -> str:
    """A path relative to the current folder when it is below it: shorter to read."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def reporter_for(as_json: bool, quiet: bool) -> Any:
    from runner.display import reporters as progress

    if as_json:
        return progress.JsonReporter()
    if quiet:
        return progress.QuietReporter()
    if sys.stderr.isatty():
        try:
            from runner.display.live import LiveReporter
        except ImportError:
            return progress.PlainReporter()
        return LiveReporter()
    return progress.PlainReporter()
