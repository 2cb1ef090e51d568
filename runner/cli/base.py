"""The command group and what every command shares: the default `run`, error exits, options.

No traceback reaches a user: bria-run's errors become messages and exit codes (0 ok, 1 runtime
failure, 2 invalid input, 130 interrupted), anything unexpected one redacted line.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from runner import __version__
from runner.errors import BriaRunError, Interrupted, PipelineInvalid, redact


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


debug_option = click.option(
    "--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
    help="Print the traceback of an unexpected error on the terminal (by default it goes to "
         "<state>.errors.log beside the state). Env: BRIA_RUN_DEBUG=1.")


@click.group(cls=_DefaultRunGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="bria-run")
@debug_option
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


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


class Duration(click.ParamType[float]):
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


state_option = click.option(
    "--state", metavar="PATH|URL", envvar="BRIA_RUN_STATE",
    help="State database: a file, a folder or a database URL. Default: state/<name>.sqlite "
         "(state/<name>.sim.sqlite with --simulate) in the file's project root: the nearest "
         "folder above the file with a state/ folder or a .git, found from the file, never "
         "from the current folder. Env: BRIA_RUN_STATE.",
)


simulate_option = click.option(
    "--simulate", is_flag=True,
    help="Use the built-in Bria simulator (no token, no credits; training takes seconds) "
         "and a state of its own.",
)


pipeline_argument = click.argument("pipeline", type=click.Path(path_type=Path, dir_okay=False))


pipelines_argument = click.argument("pipelines", nargs=-1, required=True, metavar="PIPELINE...",
                                     type=click.Path(path_type=Path, dir_okay=False))


def usage(message: str) -> BriaRunError:
    from runner.errors import UsageError

    return UsageError(message)


def counted(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
