"""The command line: parse, call the library, format, map errors to exit codes.

This is the only module that imports click. Heavy modules (httpx, SQLAlchemy, rich,
the simulator) are imported inside the commands that need them, so `bria-run
validate` and `bria-run --help` start fast.

Exit codes: 0 ok, 1 runtime failure, 2 invalid input, 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from runner import __version__
from runner.errors import EXIT_INVALID, BriaRunError, PipelineInvalid


class _DefaultRunGroup(click.Group):
    """`bria-run luna.yaml` means `bria-run run luna.yaml`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = next((a for a in args if not a.startswith("-")), None)
        if first is not None and first not in self.commands and _looks_like_file(first):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _looks_like_file(arg: str) -> bool:
    return arg.endswith((".yaml", ".yml")) or Path(arg).is_file()


def fail(error: BriaRunError) -> NoReturn:
    """Print a bria-run error to stderr and exit with its code."""
    click.echo(f"error: {error}" if not isinstance(error, PipelineInvalid) else str(error), err=True)
    sys.exit(error.exit_code)


@click.group(cls=_DefaultRunGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="bria-run")
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
def validate(pipeline: Path, as_json: bool) -> None:
    """Check PIPELINE against the schema and check every file it names.

    Touches no network and no state. Exit 0 when valid (warnings are shown),
    2 when not; every problem is listed at once as file:line:col: path: message.
    """
    from runner.loader import load_pipeline

    try:
        _, warnings = load_pipeline(pipeline)
    except PipelineInvalid as exc:
        if as_json:
            _echo_json({"valid": False, "problems": [p.as_dict() for p in exc.problems]})
            sys.exit(EXIT_INVALID)
        fail(exc)
    if as_json:
        _echo_json({"valid": True, "problems": [w.as_dict() for w in warnings]})
        return
    for warning in warnings:
        click.echo(str(warning), err=True)
    click.echo(f"{pipeline}: valid")


@main.command()
def schema() -> None:
    """Print the JSON Schema of pipeline files (draft 2020-12).

    Point your editor at it for completion and checks, for instance with a first line
    `# yaml-language-server: $schema=<path to pipeline.schema.json>`.
    """
    from runner.schema import schema_text

    click.echo(schema_text())


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))
