"""Housekeeping: `unlock` a state by hand, `clean` remote leftovers, run the `simulate`d Bria."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from runner.cli.base import fail, main, pipeline_argument, simulate_option, state_option


@main.command()
@pipeline_argument
@simulate_option
@state_option
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
@pipeline_argument
@simulate_option
@state_option
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
              help="Fraction of API requests answered 500/502/503 (before the work) or 504 "
                   "(after it, as a gateway that gave up waiting).")
@click.option("--drop-rate", type=float, default=0.0, show_default=True,
              help="Fraction of requests whose connection drops: half as the request "
                   "arrives (nothing done), half mid-answer (done).")
@click.option("--refuse-rate", type=float, default=0.0, show_default=True,
              help="Fraction of requests after which new connections are refused for 0.2 s.")
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
             drop_rate: float, refuse_rate: float, storm_rate: float, fail_training: bool,
             link_ttl: float, retire_legacy: bool, state_file: Path | None) -> None:
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
        refuse_rate=refuse_rate, storm_rate=storm_rate, fail_training=fail_training,
        link_ttl=link_ttl, retire_legacy=retire_legacy, persist_path=state_file,
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
