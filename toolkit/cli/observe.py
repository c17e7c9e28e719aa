"""Commands that look at what runs: `probe`, `metrics`, `version`."""

from __future__ import annotations

import json

import click

from toolkit import output
from toolkit.cli.common import (
    State,
    address,
    echo_json,
    endpoint,
    image_size,
    name_argument,
    pass_state,
    service_of,
)
from toolkit.protocols import Protocol


@click.command()
@name_argument(required=False)
@click.option("--url", help="Probe this endpoint instead of a catalog service.")
@click.option(
    "--protocol",
    type=click.Choice([p.value for p in Protocol]),
    help="The endpoint's protocol (with --url).",
)
@click.option("--model", help="The served model name (with --url).")
@click.option("--vision", is_flag=True, help="Also send an image in a chat (with --url).")
@click.option("--api-key", envvar="TOOLKIT_API_KEY", help="Bearer token, if the server has one.")
@click.option(
    "--size",
    default="64x64",
    show_default=True,
    callback=lambda ctx, param, value: image_size(value),
    help="Image size WxH for openai-image.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=120.0,
    show_default=True,
    help="Seconds per request.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def probe(
    ctx: click.Context,
    name: str | None,
    url: str | None,
    protocol: str | None,
    model: str | None,
    vision: bool,
    api_key: str | None,
    size: str,
    timeout: float,
    as_json: bool,
) -> None:
    """Smoke-test a running model over its protocol.

    Exit status 0 when every check passes, 1 when one fails, 2 for a usage error.

    \b
    Examples:
      toolkit probe llama3-70b_4
      toolkit probe --url http://127.0.0.1:1042 --protocol openai-text --model Llama3-70B --json
    """
    from toolkit.protocols import probe as protocols

    state = ctx.find_object(State)
    assert state is not None
    target = endpoint(state, name, url, protocol, model, vision)
    verdict = protocols.probe(
        target.protocol,
        target.url,
        target.model,
        vision=target.vision,
        api_key=api_key,
        timeout=timeout,
        size=size,
    )
    if as_json:
        click.echo(json.dumps(verdict.as_dict(), sort_keys=True))
    else:
        click.echo(protocols.describe(verdict))
    ctx.exit(0 if verdict.passed else 1)


@click.command()
@name_argument(required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option(
    "--serve",
    "serve_port",
    type=click.IntRange(1, 65535),
    metavar="PORT",
    help="Serve every service's figures as one Prometheus endpoint on this port.",
)
@click.option(
    "--bind",
    default="127.0.0.1",
    show_default=True,
    callback=address,
    help="Address of the --serve endpoint.",
)
@pass_state
def metrics(
    state: State, name: str | None, as_json: bool, serve_port: int | None, bind: str
) -> None:
    """Show live figures: load, latency, tokens/s, GPUs, restarts.

    Percentiles and rates cover the last minute: the difference from a scrape kept from an
    earlier call, or from one taken 5 s before when there is none.

    \b
    Examples:
      toolkit metrics
      toolkit metrics llama3-8b --json
      toolkit metrics --serve 9400
    """
    from toolkit.host.engine import connect
    from toolkit.observe import metrics as figures

    if name:
        service_of(state, name)  # an unknown name: exit 2
    if serve_port is not None:
        from toolkit.observe import serve as metrics_server

        click.echo(f"serving the figures of every service at http://{bind}:{serve_port}/metrics")
        metrics_server.serve(bind, serve_port)
        return
    reader = figures.load_reader(figures.WINDOW)
    rows = reader.figures(connect(), name, figures.FIRST_WAIT)
    figures.save_reader(reader)
    if as_json:
        echo_json(rows)
    elif rows:
        click.echo("\n\n".join(figures.describe(row) for row in rows))
    else:
        click.echo(f"{name} is not running." if name else "no toolkit service is running.")


@click.command()
@pass_state
def version(state: State) -> None:
    """Print the versions of the toolkit, engine, Compose, backends.

    \b
    Examples:
      toolkit version
    """
    from toolkit.observe.versions import versions

    rows = versions(state.catalog)
    click.echo(output.table(rows, ["component", "version"]))
