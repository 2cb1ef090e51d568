"""The command line: parse, call the library, format, map errors to exit codes.

This is the only module that imports click. Heavy modules (httpx, SQLAlchemy, rich,
the simulator) are imported inside the commands that need them, so `bria-run
validate` and `bria-run --help` start fast.

Exit codes: 0 ok, 1 runtime failure, 2 invalid input, 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from runner import __version__
from runner.errors import EXIT_INVALID, BriaRunError, Interrupted, PipelineInvalid, redact


class _DefaultRunGroup(click.Group):
    """`bria-run luna.yaml` means `bria-run run luna.yaml`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = next((a for a in args if not a.startswith("-")), None)
        if first is not None and first not in self.commands and _looks_like_file(first):
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        """No traceback reaches a user: bria-run's errors become messages and exit codes, and
        anything unexpected is reported as a bug in one line."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except BriaRunError as exc:
            fail(exc)
        except KeyboardInterrupt:
            click.echo("interrupted.", err=True)
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            from runner.crashlog import is_debug, traceback_text

            if is_debug():
                click.echo(traceback_text(exc), err=True)
            text = redact(f"{type(exc).__name__}: {exc}", os.environ.get("BRIA_API_TOKEN"))
            click.echo(f"internal error: {text}. This is a bug in bria-run; "
                       "your state is consistent, and running again is safe "
                       "(--debug or BRIA_RUN_DEBUG=1 shows the traceback).", err=True)
            sys.exit(1)


def _looks_like_file(arg: str) -> bool:
    return arg.endswith((".yaml", ".yml")) or Path(arg).is_file()


def fail(error: BriaRunError) -> NoReturn:
    """Print a bria-run error to stderr and exit with its code; leave at once if worker
    threads the engine gave up on are still in flight (every checkpoint is committed: nothing
    is lost)."""
    from runner.crashlog import is_debug, traceback_text

    plain = isinstance(error, (PipelineInvalid, Interrupted))  # an interrupt is no error
    if is_debug() and error.__cause__ is not None:
        click.echo(traceback_text(error.__cause__), err=True)
    click.echo(str(error) if plain else f"error: {error}", err=True)
    if error.abandoned_workers:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(error.exit_code)
    sys.exit(error.exit_code)


def _set_debug(_ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        os.environ["BRIA_RUN_DEBUG"] = "1"  # read where an error is shown (runner.crashlog)
    return value


_debug_option = click.option(
    "--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
    help="Print the traceback of an unexpected error on the terminal (by default it goes to "
         "<state>.errors.log beside the state). Env: BRIA_RUN_DEBUG=1.")


@click.group(cls=_DefaultRunGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="bria-run")
@_debug_option
def main() -> None:
    """Train a character on Bria and place it in many scenes, from one YAML file.

    \b
    Typical use:
      bria-run validate luna.yaml     check the file, spend nothing
      bria-run plan luna.yaml         show what a run would do and cost
      bria-run luna.yaml              run it (safe to repeat; resumes where it stopped)
      bria-run luna.yaml --simulate   run against the built-in Bria simulator

    The token is read from BRIA_API_TOKEN. Exit codes: 0 ok, 1 failure,
    2 invalid input, 130 interrupted.
    """


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
        _echo_json({"valid": not errors, "problems": [p.as_dict() for p in problems]})
        sys.exit(EXIT_INVALID if errors else 0)
    shown = errors + ([] if quiet else [p for p in problems if p.severity != "error"])
    for problem in shown:
        click.echo(str(problem), err=True)
    count = _count(len(errors), "error") + ", " + _count(len(problems) - len(errors), "warning")
    if quiet and len(problems) > len(errors):
        count += "; warnings hidden by --quiet"
    if errors:  # the problems on stderr, the verdict and its count on stdout
        click.echo(f"{pipeline}: invalid ({count})")
        sys.exit(EXIT_INVALID)
    click.echo(f"{pipeline}: valid ({count})")


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


@main.command()
def schema() -> None:
    """Print the JSON Schema of pipeline files (draft 2020-12).

    Point your editor at it for completion and checks, for instance with a first line
    `# yaml-language-server: $schema=<path to pipeline.schema.json>`.
    """
    from runner.pipeline.schema import schema_text

    click.echo(schema_text())


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


# --- commands that use the state ----------------------------------------------------------

class _Duration(click.ParamType[float]):
    """A duration as pipeline files write them: ``30s``, ``2m``, ``1h`` or seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        from runner.pipeline.rules import parse_duration

        if isinstance(value, float):
            return value
        seconds = parse_duration(value)
        if seconds is None:
            try:
                seconds = float(value)
            except (TypeError, ValueError):
                seconds = None
        if seconds is None or seconds <= 0:
            self.fail(f"{value!r} is not a duration like 30s, 10m, 1h or a number of seconds",
                      param, ctx)
        return seconds


_state_option = click.option(
    "--state", metavar="PATH|URL", envvar="BRIA_RUN_STATE",
    help="State database: a file, a folder or a database URL. Default: state/<name>.sqlite "
         "(state/<name>.sim.sqlite with --simulate) in the file's project root: the nearest "
         "folder above the file with a state/ folder or a .git, found from the file, never "
         "from the current folder. Env: BRIA_RUN_STATE.",
)
_simulate_option = click.option(
    "--simulate", is_flag=True,
    help="Use the built-in Bria simulator (no token, no credits; training takes seconds) "
         "and a state of its own.",
)
_pipeline_argument = click.argument("pipeline", type=click.Path(path_type=Path, dir_okay=False))


_pipelines_argument = click.argument("pipelines", nargs=-1, required=True, metavar="PIPELINE...",
                                     type=click.Path(path_type=Path, dir_okay=False))


@main.command()
@_pipelines_argument
@_simulate_option
@_state_option
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
@click.option("--job-timeout", type=_Duration(), default="30m", show_default=True,
              metavar="DURATION",
              help="A generation job still in progress after this (30s, 10m, 1h, or seconds) "
                   "fails its scene; the other scenes go on and the next run sends it once more.")
@click.option("--outage-tolerance", type=_Duration(), default="30m", show_default=True,
              metavar="DURATION", envvar="BRIA_RUN_OUTAGE_TOLERANCE",
              help="How long Bria may be unreachable (no answer, 5xx, 429) before the run stops, "
                   "resumable; meanwhile requests are retried at most 5 minutes apart and a "
                   "training goes on at Bria. Like 90s, 30m, 2h.")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors and the final line.")
@_debug_option
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
        fail(_usage("--retrain and --keep-model contradict each other: choose one"))
    from runner.app import Target
    from runner.app import run as run_pipeline
    from runner.engine.context import RunOptions

    pipeline = pipelines[0]
    command = "bria-run " + " ".join(sys.argv[1:]) if sys.argv[1:] else f"bria-run {pipeline}"

    def options_for(target: Target) -> RunOptions:
        return RunOptions(retrain=retrain, keep_model=keep_model, restore=restore,
                          resume_command=_resume_command(target.path, simulate, state),
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
    reporter = _reporter(as_json, quiet)
    try:
        summary = run_pipeline(Target(pipeline, state, simulate), options, reporter,
                               command=command, rpm=rpm, wait_lock=wait_lock)
    finally:
        reporter.close()
    if not as_json:
        click.echo(_final_line(summary))


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
    for line, is_error in final_lines(results, shown=_shown):
        if is_error or not as_json:
            click.echo(line, err=is_error)
    code = worst([r.code for r in results])
    if any(r.error is not None and r.error.abandoned_workers for r in results):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _final_line(summary: Any) -> str:
    from runner.many import summary_line

    return summary_line(summary, _shown)


def _resume_command(pipeline: Path, simulate: bool, state: str | None) -> str:
    if state and "://" in state:
        from runner.state.postgres import shown

        state = shown(state)  # never a password in a printed command
    return f"bria-run {pipeline}" + (" --simulate" if simulate else "") + (
        f" --state {state}" if state else "")


def _shown(path: str) -> str:
    """A path relative to the current folder when it is below it: shorter to read."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


@main.command()
@_pipeline_argument
@_simulate_option
@_state_option
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
                                  _resume_command(pipeline, simulate, state))
    except BriaRunError as exc:
        fail(exc)
    click.echo(_shown(str(page)))
    if open_it:
        import webbrowser

        if not webbrowser.open(page.resolve().as_uri()):
            click.echo("no web browser found here: open the file above by hand.", err=True)


def _each(ctx: click.Context, pipelines: tuple[Path, ...], **options: Any) -> None:
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
@_pipelines_argument
@_simulate_option
@_state_option
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
    _each(ctx, pipelines, simulate=simulate, state=state, retrain=retrain,
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
        _echo_json({**plan_data(the_plan), "warnings": [w.as_dict() for w in seen.warnings]})
    else:
        for warning in seen.warnings:
            click.echo(str(warning), err=True)
        click.echo(plan_text(the_plan, verbose=verbose))
    if detailed_exitcode and the_plan.has_work:
        sys.exit(2)


@main.command()
@click.argument("pipelines", nargs=-1, metavar="[PIPELINE...]",
                type=click.Path(path_type=Path, dir_okay=False))
@_simulate_option
@_state_option
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
        fail(_usage("name a pipeline file, or use --all with a PostgreSQL --state"))
    _each(ctx, pipelines, simulate=simulate, state=state, show_all=False, as_json=as_json)
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
        click.echo(f"no state for Bria at {_shown(location)} yet; a simulated one exists "
                   f"({_shown(simulated)}): bria-run {command} {pipeline} --simulate", err=True)


def _studio(state: str | None, as_json: bool) -> None:
    """`status --all`: the studio view of a PostgreSQL state."""
    from runner.state.postgres import is_postgres, shown

    if not state or not is_postgres(state):
        fail(_usage("--all lists the pipelines of a shared database: give --state "
                    "postgresql://... (or BRIA_RUN_STATE)"))
    from runner.display.studio import studio_text
    from runner.state.studio import studio_view

    entries = studio_view(state)
    click.echo(json.dumps(entries, indent=2) if as_json else studio_text(entries, shown(state)))


@main.command()
@_pipelines_argument
@_simulate_option
@_state_option
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.pass_context
def outputs(ctx: click.Context, pipelines: tuple[Path, ...], simulate: bool, state: str | None,
            as_json: bool) -> None:
    """List PIPELINE's output files with scene, seed and sha256, and the model id; each file
    is hashed and shown as ok, MISSING or ALTERED (`file` in --json)."""
    _each(ctx, pipelines, simulate=simulate, state=state, as_json=as_json)
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


@main.command()
@_pipeline_argument
@_simulate_option
@_state_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def unlock(pipeline: Path, simulate: bool, state: str | None, yes: bool) -> None:
    """Break PIPELINE's state lock by hand (rarely needed: a dead holder's lock is broken
    automatically). Shows what it breaks first."""
    from runner.app import Target, open_recorded
    from runner.state.lock import break_lock, current_holder

    with open_recorded(Target(pipeline, state, simulate)) as (_, store, _r, where):
        holder = current_holder(store) if store else None
        if holder is None:
            click.echo(f"{where} is not locked.")
            return
        click.echo(f"{where} is locked by pid {holder.pid} on {holder.host}, running "
                   f"`{holder.command}` since {holder.since()}.")
        if not yes and not click.confirm("Break this lock?", default=False):
            sys.exit(1)
        break_lock(store, holder, "bria-run unlock")  # type: ignore[arg-type]
        click.echo("lock broken.")


@main.command()
@_pipeline_argument
@_simulate_option
@_state_option
@click.option("--yes", is_flag=True, help="Delete without asking (for scripts).")
@click.option("--dry-run/--no-dry-run", default=None,
              help="Only list what would be deleted. The default when not on a terminal "
                   "(unless --yes).")
def clean(pipeline: Path, simulate: bool, state: str | None, yes: bool,
          dry_run: bool | None) -> None:
    """Delete PIPELINE's remote resources that nothing uses any more: datasets and models
    superseded by a retrain, models whose training failed. Lists each first, then asks.

    Only what this pipeline's state created (under its own names) is ever deleted; never
    the model or dataset in use, never a project, never a training in progress. What is
    deleted is recorded, so a second clean does nothing.
    """
    from runner.app import Target
    from runner.clean import clean as clean_pipeline
    from runner.clean import find_leftovers

    target = Target(pipeline, state, simulate)
    found = find_leftovers(target)
    if not found.items:
        click.echo(f"nothing to clean: every remote resource {found.pipeline}'s state "
                   "records is in use (or was cleaned already).")
        return
    click.echo(f"{len(found.items)} remote resource(s) of {found.pipeline} nothing uses any more:")
    for item in found.items:
        click.echo(f"  {item.describe()}")
    if dry_run is None:
        dry_run = not yes and not sys.stdin.isatty()
    if dry_run:
        click.echo(f"dry run: nothing deleted. To delete them: bria-run clean {pipeline}"
                   + (" --simulate" if simulate else "") + " --yes")
        return
    if not yes and not click.confirm("Delete them at Bria?", default=False):
        click.echo("nothing deleted.")
        sys.exit(1)
    result = clean_pipeline(target, f"bria-run clean {pipeline}", click.echo)
    click.echo(f"{len(result.deleted)} deleted, {len(result.refused)} kept.")
    if result.refused:
        sys.exit(1)


def _reporter(as_json: bool, quiet: bool) -> Any:
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


def _usage(message: str) -> BriaRunError:
    from runner.errors import UsageError

    return UsageError(message)


@main.command()
@click.option("--port", type=int, default=8765, show_default=True,
              help="Port on 127.0.0.1 (0 picks a free one).")
@click.option("--token", default="sim-token", show_default=True,
              help="The api_token the simulator accepts.")
@click.option("--rpm", type=int, default=60, show_default=True,
              help="Requests per minute per endpoint (Bria's Starter plan: 60); 0 = unlimited.")
@click.option("--latency", type=float, default=0.0, show_default=True,
              help="Seconds added to every API request.")
@click.option("--endpoint-latency", "endpoint_latency", multiple=True, metavar="'METHOD /path=SECONDS'",
              help="Seconds added to one endpoint, named as in /__sim/stats "
                   "(e.g. 'POST /v2/image/generate/tailored=31'). Repeatable.")
@click.option("--training-seconds", type=float, default=60.0, show_default=True,
              help="How long a training takes (Bria: hours).")
@click.option("--generation-seconds", type=float, default=2.0, show_default=True,
              help="How long a generation job takes.")
@click.option("--fail-rate", type=float, default=0.0, show_default=True,
              help="Fraction of API requests answered 500/502/503.")
@click.option("--drop-rate", type=float, default=0.0, show_default=True,
              help="Fraction of requests whose connection drops mid-answer.")
@click.option("--storm-rate", type=float, default=0.0, show_default=True,
              help="Fraction of requests answered 429 with Retry-After.")
@click.option("--fail-training", is_flag=True, help="Trainings end Failed.")
@click.option("--link-ttl", type=float, default=3600.0, show_default=True,
              help="Seconds a result link serves before it expires (403).")
@click.option("--retire-legacy", is_flag=True,
              help="Answer the legacy (light/max) routes as Bria does since it retired them "
                   "on 2026-07-01: generate_prefix, /v1/text-to-image/tailored and "
                   "/v1/reimagine answer 404, a model with training_version 400.")
@click.option("--state", "state_file", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="Keep the simulated world in this JSON file across restarts.")
def simulate(port: int, token: str, rpm: int, latency: float, endpoint_latency: tuple[str, ...],
             training_seconds: float, generation_seconds: float, fail_rate: float,
             drop_rate: float, storm_rate: float, fail_training: bool, link_ttl: float,
             retire_legacy: bool, state_file: Path | None) -> None:
    """Run the built-in Bria simulator on 127.0.0.1 until Ctrl-C.

    It speaks Bria's API (both generations) with its rate limits, timings and
    errors, and makes real images. Point bria-run (or any client) at it with the
    two export lines it prints. Counters: GET <url>/__sim/stats.
    """
    import signal
    import threading

    from runner.errors import ConfigError
    from runner.simulator import SimConfig, Simulator

    config = SimConfig(
        token=token, rpm=rpm or None, latency=latency,
        latency_by_endpoint=_endpoint_latencies(endpoint_latency),
        training_seconds=training_seconds,
        generation_seconds=generation_seconds, fail_rate=fail_rate, drop_rate=drop_rate,
        storm_rate=storm_rate, fail_training=fail_training, link_ttl=link_ttl,
        retire_legacy=retire_legacy, persist_path=state_file,
    )
    try:
        simulator = Simulator(config, port=port).start()
    except OSError as exc:
        fail(ConfigError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}. "
                         f"Choose another --port (0 picks a free one)."))
    stopping = threading.Event()
    # Ctrl-C and `kill` only set a flag: the main loop notices it and stops the server, so no
    # exception can land in the middle of start-up or shutdown.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _signum, _frame: stopping.set())
    click.echo(f"Bria simulator serving at {simulator.base_url} (Ctrl-C stops it)")
    click.echo(f"export BRIA_API_URL={simulator.base_url}")
    click.echo(f"export BRIA_API_TOKEN={token}")
    while not stopping.wait(0.2):
        pass
    simulator.stop()
    click.echo("simulator stopped", err=True)


def _endpoint_latencies(given: tuple[str, ...]) -> dict[str, float]:
    """``'POST /v2/image/generate/tailored=31'`` -> ``{"POST /v2/...": 31.0}``."""
    found: dict[str, float] = {}
    for text in given:
        endpoint, _, seconds = text.rpartition("=")
        try:
            found[endpoint.strip()] = float(seconds)
        except ValueError:
            raise click.BadParameter(f"{text!r}: write it as 'METHOD /path=SECONDS', e.g. "
                                     "'GET /v1/tailored-gen/models/{id}=31'") from None
        if " " not in endpoint.strip():
            raise click.BadParameter(f"{text!r}: the endpoint is a method and a path")
    return found
