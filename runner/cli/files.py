"""The commands that read a pipeline and its state and send nothing: validate, schema, plan,
status (and the studio view), outputs, gallery."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from runner.cli.base import (
    counted,
    echo_json,
    fail,
    main,
    pipeline_argument,
    pipelines_argument,
    simulate_option,
    state_option,
    usage,
)
from runner.cli.run import relative_path, resume_command
from runner.errors import EXIT_INVALID, BriaRunError, PipelineInvalid


@main.command()
@click.argument("pipeline", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="Show errors only, not warnings.")
def validate(pipeline: Path, as_json: bool, quiet: bool) -> None:
    """Check PIPELINE against the schema and check every file it names.

    Touches no network and no state. Exit 0 when valid (warnings are shown),
    2 when not; every problem is listed at once as file:line:col: path: message,
    errors first, then warnings, then a count.
    """
    from runner.pipeline.loader import load_pipeline

    try:
        _, warnings = load_pipeline(pipeline)
        problems: list[Any] = list(warnings)
    except PipelineInvalid as exc:
        problems = list(exc.problems)
    errors = [p for p in problems if p.severity == "error"]
    if as_json:
        echo_json({"valid": not errors, "problems": [p.as_dict() for p in problems]})
        sys.exit(EXIT_INVALID if errors else 0)
    shown = errors + ([] if quiet else [p for p in problems if p.severity != "error"])
    for problem in shown:
        click.echo(str(problem), err=True)
    count = counted(len(errors), "error") + ", " + counted(len(problems) - len(errors), "warning")
    if quiet and len(problems) > len(errors):
        count += "; warnings hidden by --quiet"
    if errors:  # the problems on stderr, the verdict and its count on stdout
        click.echo(f"{pipeline}: invalid ({count})")
        sys.exit(EXIT_INVALID)
    click.echo(f"{pipeline}: valid ({count})")


@main.command()
def schema() -> None:
    """Print the JSON Schema of pipeline files (draft 2020-12).

    Point your editor at it for completion and checks, for instance with a first line
    `# yaml-language-server: $schema=<path to pipeline.schema.json>`.
    """
    from runner.pipeline.schema import schema_text

    click.echo(schema_text())


@main.command()
@pipeline_argument
@simulate_option
@state_option
@click.option("--open", "open_it", is_flag=True, help="Open the page in the web browser.")
def gallery(pipeline: Path, simulate: bool, state: str | None, open_it: bool) -> None:
    """Write PIPELINE's gallery, <outputs>/index.html: every scene with its prompt,
    settings and images, earlier versions beside the current ones, failures and pending
    scenes. One offline page (no server, no network; relative links, so the outputs folder
    can be copied or zipped), with index.json beside it. Sends nothing.

    Every run that writes or moves an image refreshes it too.
    """
    from runner.app import Target, write_gallery_page

    try:
        page = write_gallery_page(Target(pipeline, state, simulate),
                                  resume_command(pipeline, simulate, state))
    except BriaRunError as exc:
        fail(exc)
    click.echo(relative_path(str(page)))
    if open_it:
        import webbrowser

        if not webbrowser.open(page.resolve().as_uri()):
            click.echo("no web browser found here: open the file above by hand.", err=True)


def each(ctx: click.Context, pipelines: tuple[Path, ...], **options: Any) -> None:
    """Several files: the command once per file, a blank line between, then exit with the
    worst of their codes (``runner.many.worst``). One file: return and let the command run."""
    if len(pipelines) <= 1:
        return
    from runner.many import worst

    codes = []
    for number, pipeline in enumerate(pipelines):
        if number and not options.get("as_json"):
            click.echo("")
        try:
            ctx.invoke(ctx.command, pipelines=(pipeline,), **options)
            codes.append(0)
        except SystemExit as exc:
            codes.append(int(exc.code or 0))
        except BriaRunError as exc:
            click.echo(f"{pipeline}: error: {exc}", err=True)
            codes.append(exc.exit_code)
    sys.exit(worst(codes))


@main.command()
@pipelines_argument
@simulate_option
@state_option
@click.option("--retrain", is_flag=True, help="Plan as `run --retrain` would.")
@click.option("--keep-model", is_flag=True, help="Plan as `run --keep-model` would.")
@click.option("--restore", is_flag=True, help="Plan as `run --restore` would.")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when there is nothing to do, 2 when there is work, 1 on error.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="List finished steps too.")
@click.pass_context
def plan(ctx: click.Context, pipelines: tuple[Path, ...], simulate: bool, state: str | None,
         retrain: bool, keep_model: bool, restore: bool, detailed_exitcode: bool,
         as_json: bool, verbose: bool) -> None:
    """Show what a run of PIPELINE would do and cost, and why. Sends nothing. Several files:
    one plan each; the exit code is the worst."""
    each(ctx, pipelines, simulate=simulate, state=state, retrain=retrain,
          keep_model=keep_model, restore=restore, detailed_exitcode=detailed_exitcode,
          as_json=as_json, verbose=verbose)
    from runner.app import Target, snapshot

    pipeline = pipelines[0]
    from runner.display.render import plan_data, plan_text

    try:
        seen = snapshot(Target(pipeline, state, simulate), retrain=retrain,
                        keep_model=keep_model, restore=restore)
    except BriaRunError as exc:
        if detailed_exitcode:  # 2 means "work to do" here, so every error exits 1
            click.echo(str(exc) if isinstance(exc, PipelineInvalid) else f"error: {exc}",
                       err=True)
            sys.exit(1)
        fail(exc)
    the_plan = seen.plan
    _hint_simulated(seen.location, "plan", pipeline, simulate)
    if as_json:
        echo_json({**plan_data(the_plan), "warnings": [w.as_dict() for w in seen.warnings]})
    else:
        for warning in seen.warnings:
            click.echo(str(warning), err=True)
        click.echo(plan_text(the_plan, verbose=verbose))
    if detailed_exitcode and the_plan.has_work:
        sys.exit(2)


@main.command()
@click.argument("pipelines", nargs=-1, metavar="[PIPELINE...]",
                type=click.Path(path_type=Path, dir_okay=False))
@simulate_option
@state_option
@click.option("--all", "show_all", is_flag=True,
              help="Every pipeline in the --state database (PostgreSQL): holder and lease, "
                   "phase, training, scenes done/total, credits spent, last error.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.pass_context
def status(ctx: click.Context, pipelines: tuple[Path, ...], simulate: bool, state: str | None,
           show_all: bool, as_json: bool) -> None:
    """Show each step and scene of PIPELINE with its state, the model's training status,
    credits spent so far and the outputs. Sends nothing. Several files: one status each."""
    if show_all:
        _studio(state, as_json)
        return
    if not pipelines:
        fail(usage("name a pipeline file, or use --all with a PostgreSQL --state"))
    each(ctx, pipelines, simulate=simulate, state=state, show_all=False, as_json=as_json)
    from runner.app import Target, snapshot
    from runner.display.render import status_data, status_text

    pipeline = pipelines[0]
    seen = snapshot(Target(pipeline, state, simulate))
    _hint_simulated(seen.location, "status", pipeline, simulate)
    data = status_data(seen.plan, seen.recorded, seen.location, seen.lock)
    click.echo(json.dumps(data, indent=2) if as_json else status_text(data))


def _hint_simulated(location: str, command: str, pipeline: Path, simulate: bool) -> None:
    """No state for Bria yet, but a simulated one beside it: say so (it is what the user
    looked at last, most likely)."""
    if simulate or "://" in location or not location.endswith(".sqlite"):
        return
    simulated = location[: -len(".sqlite")] + ".sim.sqlite"
    if not Path(location).exists() and Path(simulated).exists():
        click.echo(f"no state for Bria at {relative_path(location)} yet; a simulated one exists "
                   f"({relative_path(simulated)}): bria-run {command} {pipeline} --simulate", err=True)


def _studio(state: str | None, as_json: bool) -> None:
    """`status --all`: the studio view of a PostgreSQL state."""
    from runner.state.postgres import is_postgres, shown

    if not state or not is_postgres(state):
        fail(usage("--all lists the pipelines of a shared database: give --state "
                    "postgresql://... (or BRIA_RUN_STATE)"))
    from runner.display.studio import studio_text
    from runner.state.studio import studio_view

    entries = studio_view(state)
    click.echo(json.dumps(entries, indent=2) if as_json else studio_text(entries, shown(state)))


@main.command()
@pipelines_argument
@simulate_option
@state_option
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.pass_context
def outputs(ctx: click.Context, pipelines: tuple[Path, ...], simulate: bool, state: str | None,
            as_json: bool) -> None:
    """List PIPELINE's output files with scene, seed and sha256, and the model id; each file
    is hashed and shown as ok, MISSING or ALTERED (`file` in --json)."""
    each(ctx, pipelines, simulate=simulate, state=state, as_json=as_json)
    from runner.app import Target, snapshot

    pipeline = pipelines[0]
    from runner.display.render import outputs_data

    seen = snapshot(Target(pipeline, state, simulate))
    _hint_simulated(seen.location, "outputs", pipeline, simulate)
    data = outputs_data(seen.recorded, seen.plan)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"model: {data['model_id']}")
    for entry in data["files"]:
        mark = "" if entry["file"] == "ok" else f"  {entry['file'].upper()}"
        click.echo(f"{entry['path']}  seed={entry['seed']}  model={entry['model_id']}  "
                   f"sha256={entry['sha256'][:16]}{mark}")
    if data["previous"]:
        click.echo("earlier versions (moved aside, kept):")
    for entry in data["previous"]:
        click.echo(f"  {entry['path']}  seed={entry['seed']}  prompt={entry['prompt']!r}")
