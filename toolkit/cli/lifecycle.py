"""Commands that run services: `pull`, `check`, `start`, `status`, `logs`, `stop`, `watch`."""

from __future__ import annotations

import sys
import time

import click

from toolkit import output
from toolkit.cli.common import (
    State,
    address,
    echo_json,
    gpu_ids,
    name_argument,
    pass_state,
    service_of,
)
from toolkit.errors import ToolkitError, UsageError
from toolkit.service.replicas import DEFAULT_POLICY
from toolkit.service.replicas import POLICIES as ROUTER_POLICIES


@click.command()
@name_argument()
@click.option(
    "--stall-minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Stop a download that moves no byte for this long (run pull again to resume).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object when done.")
@pass_state
def pull(state: State, name: str, stall_minutes: float, as_json: bool) -> None:
    """Fetch a config's weights into the model cache before `start`.

    Resolves the config's revision, downloads what the cache lacks (resuming a partial
    download), and records the commit and each file's SHA-256 in /cache/locks/NAME.json in
    the cache volume. Honours HF_ENDPOINT and the token start uses (HF_TOKEN_FILE, HF_TOKEN).

    \b
    Examples:
      toolkit pull llama3.1-405b_8
      HF_ENDPOINT=https://hub.internal toolkit pull llama3-8b --stall-minutes 30
    """
    from toolkit.lifecycle import pull as pulling

    config = state.config(name)
    with output.Waiting(sys.stderr) as waiting:
        pulled = pulling.pull(state.catalog, config, waiting.show, stall_minutes)
    if isinstance(pulled, str):
        click.echo(
            output.as_json({"config": name, "pulled": False, "reason": pulled})
            if as_json
            else pulled
        )
        return
    if as_json:
        echo_json(
            {
                "config": name,
                "pulled": True,
                "repo": pulled.repo,
                "commit": pulled.commit,
                "bytes": pulled.total,
                "files": pulled.files,
                "lock": pulled.lock,
            }
        )
        return
    click.echo(
        f"{name}: {pulled.repo} at commit {pulled.commit[:12]} is in the model cache "
        f"({pulling.size(pulled.total)} in {pulled.files} file(s)); the lock is {pulled.lock}."
    )


@click.command()
@name_argument()
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Seconds the check may take (vLLM's import alone takes 20 to 60 s on two cores).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_state
def check(state: State, name: str, timeout: float, as_json: bool) -> None:
    """Check the config with the image's own vLLM before any download.

    In a one-off container of the config's built image, with no network, no GPU and no
    weights, vLLM parses the config's command line and checks the architecture, quantization,
    context length, dtype and the parallel split on the checkpoint's config.json (its twin,
    beside the config in twins/). Exit 0 when vLLM accepts it, 1 with vLLM's own refusal.

    \b
    Examples:
      toolkit check llama3-70b_4
      toolkit --catalog ~/models check qwen2.5-7b-instruct_1
    """
    from toolkit.lifecycle import check as checking

    checked = checking.check(state.catalog, state.config(name), timeout)
    if as_json:
        echo_json(
            {
                "config": name,
                "accepted": True,
                "twin": str(checked.twin),
                "image": checked.image,
                "summary": checked.summary,
            }
        )
        return
    click.echo(f"{name}: vLLM in {checked.image} accepts it on {checked.twin}: {checked.summary}")


@click.command()
@name_argument()
@click.option(
    "--gpus",
    metavar="IDS",
    callback=gpu_ids,
    help="GPU ids to use, comma-separated (default: 0..N-1).",
)
@click.option("--port", type=click.IntRange(1, 65535), help="Host port (default: the config's).")
@click.option(
    "--bind",
    default="127.0.0.1",
    show_default=True,
    callback=address,
    help="Host address to publish on; 0.0.0.0 exposes the service to the network.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    help="Seconds to wait for the model (default: the config's startup_seconds).",
)
@click.option("--no-wait", is_flag=True, help="Return once the container is up.")
@click.option("--force", is_flag=True, help="Start even when the plan says it does not fit.")
@click.option(
    "--api-key",
    envvar="TOOLKIT_API_KEY",
    help="Bearer token the server requires; needed to --bind beyond loopback.",
)
@click.option(
    "--stall-minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Stop a download that moves no byte for this long (it resumes on the next start).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object when ready.")
@click.option(
    "--role",
    type=click.Choice(["head", "worker"]),
    help="A config that spans hosts: serve as the head here, or join one as a worker.",
)
@click.option("--head-address", metavar="HOST", help="The head host a --role worker joins.")
@click.option(
    "--check",
    "check_first",
    is_flag=True,
    help="Run `toolkit check` first: vLLM's refusal stops the start before any download.",
)
@click.option(
    "--replicas",
    type=click.IntRange(1, 64),
    help="Copies of the server, each on its own GPUs, behind one router (default: the config's).",
)
@click.option(
    "--policy",
    type=click.Choice(ROUTER_POLICIES),
    help="How the router spreads requests over the replicas (default: cache_aware).",
)
@pass_state
def start(
    state: State,
    name: str,
    gpus: list[str] | None,
    port: int | None,
    bind: str,
    timeout: float | None,
    no_wait: bool,
    force: bool,
    api_key: str | None,
    stall_minutes: float,
    as_json: bool,
    role: str | None,
    head_address: str | None,
    check_first: bool,
    replicas: int | None,
    policy: str | None,
) -> None:
    """Start a config's service and wait until its model answers.

    Starting a service that already runs with the same settings succeeds and says so. Missing
    weights are pulled first (see `pull`); --timeout counts from the end of the download.

    \b
    Examples:
      toolkit start llama3-70b_4
      toolkit start llama3-70b_4 --gpus 4,5,6,7 --port 2042
      toolkit start demo-image --timeout 120
      TOOLKIT_API_KEY=... toolkit start llama3-8b --bind 0.0.0.0
      toolkit start llama3-8b --replicas 4 --policy round_robin
    """
    from toolkit.lifecycle import preflight, roles, router
    from toolkit.lifecycle import start as lifecycle_start
    from toolkit.protocols import probe as protocols

    config = state.config(name)
    count = router.count(config, replicas)
    if policy and count == 1:
        raise UsageError(
            "--policy chooses how the router spreads requests over replicas; give --replicas 2 "
            "or more (or replicas: in the config), or leave --policy out."
        )
    if check_first:
        from toolkit.lifecycle import check as checking

        checked = checking.check(state.catalog, config)
        click.echo(f"{name}: vLLM accepts it on {checked.twin}: {checked.summary}", err=True)
    worker = roles.start_role(state.catalog, config, role, head_address)
    if worker is not None:
        click.echo(f"{name} worker {worker} started; it joins the head at {head_address}.")
        return
    options = preflight.StartOptions(
        gpus,
        port,
        bind,
        timeout,
        not no_wait,
        force,
        api_key,
        stall_minutes,
        count,
        policy or DEFAULT_POLICY,
    )
    began = time.monotonic()
    with output.Waiting(sys.stderr) as waiting:
        started = lifecycle_start.start(state.catalog, config, options, waiting.show)
    service = started.service
    elapsed = time.monotonic() - began
    if as_json:
        echo_json(
            {
                "config": service.name,
                "url": service.url,
                "port": service.port,
                "gpus": service.gpus,
                "elapsed_s": round(elapsed, 2),
                "already_running": started.already_running,
                "ready": not no_wait,
                "replicas": count,
            }
        )
        return
    if started.already_running:
        click.echo(f"{name} is already running at {service.url} with the same settings.")
    elif no_wait:
        click.echo(f"{name} started at {service.url}; not waiting for {config.model}.")
        return
    else:
        behind = f" from {count} replicas behind the router" if count > 1 else ""
        click.echo(
            f"{name} is ready at {service.url} after {elapsed:.1f} s: {config.model} "
            f"answers{behind}."
        )
    click.echo(f"try: {protocols.example_request(service.protocol, service.url, service.model)}")


@click.command()
@name_argument(required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@pass_state
def status(state: State, name: str | None, as_json: bool) -> None:
    """Show what runs: state, health, URL, GPUs, uptime, restarts.

    \b
    Examples:
      toolkit status
      toolkit status llama3-70b_4 --json
    """
    from toolkit.observe import status as observe_status

    if name:
        service_of(state, name)  # an unknown name: exit 2
    rows = observe_status.status(name)
    if as_json:
        echo_json(rows)
    elif rows:
        click.echo(output.status_table(rows))
    else:
        click.echo(f"{name} is not running." if name else "no toolkit service is running.")


@click.command()
@name_argument()
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option(
    "--tail",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Lines from the end to show.",
)
@click.option(
    "--all-lines",
    is_flag=True,
    help="Also show the access lines of healthchecks and readiness polls.",
)
@click.option(
    "--replica",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Which replica's lines, for a service started with --replicas.",
)
@pass_state
def logs(state: State, name: str, follow: bool, tail: int, all_lines: bool, replica: int) -> None:
    """Print a service's log lines, healthchecks left out.

    \b
    Examples:
      toolkit logs llama3-70b_4 --tail 20
      toolkit logs flux.1-dev -f
      toolkit logs llama3-8b --replica 2
    """
    from toolkit.lifecycle import start as lifecycle_start
    from toolkit.lifecycle import stop as stopping

    if service_of(state, name) is None:
        raise ToolkitError(f"{name} is not running; start it with 'toolkit start {name}'.")
    pending = ""
    for chunk in stopping.logs(name, follow, tail, replica):
        pending += chunk
        *lines, pending = pending.split("\n")
        for line in lines:
            if all_lines or not lifecycle_start.line_is_poll(line):
                click.echo(line)
    if pending and (all_lines or not lifecycle_start.line_is_poll(pending)):
        click.echo(pending)


@click.command()
@name_argument()
@click.option(
    "--volumes",
    is_flag=True,
    help="Also delete the shared model cache volume (every config's weights); refused while "
    "another service uses it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_state
def stop(state: State, name: str, volumes: bool, as_json: bool) -> None:
    """Stop a service and remove its containers; safe to repeat.

    \b
    Examples:
      toolkit stop llama3-70b_4
      toolkit stop flux.1-dev --volumes
    """
    from toolkit.lifecycle import stop as stopping

    service_of(state, name)  # an unknown name that does not run: exit 2
    was_running = stopping.stop(name, volumes)
    if as_json:
        echo_json({"config": name, "was_running": was_running, "cache_removed": volumes})
        return
    if was_running:
        click.echo(f"stopped {name}" + (" and removed the model cache" if volumes else ""))
    else:
        click.echo(f"{name} is not running; nothing to stop.")


@click.command()
@click.option(
    "--interval",
    type=click.FloatRange(min=0.5),
    default=30.0,
    show_default=True,
    help="Seconds between inspections of every service (events arrive at once).",
)
@click.option(
    "--backoff",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds before the first restart; each consecutive one doubles it.",
)
@click.option(
    "--max-backoff",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="The longest wait before a restart, in seconds.",
)
@click.option(
    "--max-restarts",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Consecutive restarts of one service before giving up on it.",
)
@click.option(
    "--reset-after",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="Seconds healthy after which the consecutive count starts again.",
)
@click.option(
    "--for", "duration", type=click.FloatRange(min=0), help="Stop after this many seconds."
)
def watch(
    interval: float,
    backoff: float,
    max_backoff: float,
    max_restarts: int,
    reset_after: float,
    duration: float | None,
) -> None:
    """Restart services that turn unhealthy (in the foreground).

    It follows the engine's health events, restarts an unhealthy service after a backoff,
    gives up after --max-restarts in a row, logs every action to stderr, and leaves alone what
    `toolkit stop` stopped. `toolkit status` shows its restarts and the last failure.

    \b
    Examples:
      toolkit watch
      toolkit watch --backoff 5 --max-restarts 3
    """
    import logging
    import signal

    from toolkit.lifecycle import watch as watchdog

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
        stream=sys.stderr,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a service manager's stop
    policy = watchdog.Policy(interval, backoff, max_backoff, max_restarts, reset_after)
    watchdog.watch(policy, None if duration is None else time.time() + duration)
