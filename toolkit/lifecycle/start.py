"""Start a service: check, `compose up -d`, then wait until the model answers.

Compose v2 does what a user would do by hand with the rendered file (up, down), so the toolkit and
a person running `docker compose -f compose/X.yaml up -d` act on the same project. A crash, a
timeout or an interrupt while waiting stops the service again, so nothing is left holding GPUs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from toolkit import protocols
from toolkit.catalog import names
from toolkit.errors import ToolkitError
from toolkit.host import locks
from toolkit.host.compose import last_line, run_compose
from toolkit.host.engine import Container, Engine, EngineError, connect
from toolkit.lifecycle import proxy, router, watch
from toolkit.lifecycle.credentials import hand_over_token, handed_token
from toolkit.lifecycle.preflight import Launch, StartOptions, checks_or_running
from toolkit.lifecycle.running import (
    Interrupted,
    Service,
    Started,
    container,
    containers,
    own_url,
)
from toolkit.lifecycle.stop import down
from toolkit.paths import state_dir

if TYPE_CHECKING:
    from toolkit.catalog.configs import Catalog, Config

LOG_TAIL = 50

POLL_SECONDS = 0.25

# The server's own readiness polls and healthchecks, left out of the progress line.
POLL_PATHS = (*protocols.polls(), "GET /health")

# Called while start waits: seconds since the container started, and what is happening.
Progress = Callable[[float, str], None]


def start(catalog: Catalog, config: Config, options: StartOptions, progress: Progress) -> Started:
    """Check, `compose up -d`, then wait until the model is listed by the server.

    A crash, a timeout or an interrupt while waiting stops the service again, so nothing is left
    holding GPUs; the failure's message keeps the server's last log lines.
    """
    engine = connect()
    timeout = options.timeout if options.timeout is not None else config.startup_seconds
    launch = checks_or_running(engine, catalog, config, options)
    if not isinstance(launch, Started):
        cached = _prepare(catalog, config, launch, options, progress)
        # The checks again and `compose up` under one lock: a second start checks after this
        # one's container exists, so two starts on the same GPUs or port cannot both pass.
        # The token is handed over only then, so a start that loses the race removes nothing
        # the running service mounts.
        with locks.start_lock():
            launch = checks_or_running(engine, catalog, config, options)
            if not isinstance(launch, Started):
                watch.clear_stopped(config.name)
                _up(engine, catalog, config, launch, options, cached)
    if isinstance(launch, Started):
        # Running already: a start killed while waiting left it loading, so wait for it too;
        # but it is not this command's to stop if the wait fails.
        if options.wait:
            _wait(
                engine,
                config,
                launch.service,
                timeout,
                options.api_key,
                progress,
                launch.restarts,
                own=False,
            )
        return launch
    service = launch.service
    try:
        if options.wait:
            _wait(engine, config, service, timeout, options.api_key, progress)
    except KeyboardInterrupt:
        raise _interrupted(config.name) from None
    return Started(service)


def _prepare(
    catalog: Catalog, config: Config, launch: Launch, options: StartOptions, progress: Progress
) -> bool:
    """What takes long, before the lock: the download (with progress, stopped only by a stall;
    the load timeout counts from its end) and, for a keyed service, the proxy's image. True
    when the cache matches its lock, so the server starts without the Hub."""
    from toolkit.lifecycle import pull

    token = hand_over_token(f"{config.name}.pull", launch.token) if config.gated else None
    try:
        cached = pull.prepare(
            catalog, config, token, progress, stderr_progress, options.stall_minutes
        )
    finally:
        if token is not None:
            token.unlink(missing_ok=True)
    if options.api_key:
        proxy.ensure_image()
    if options.replicas > 1:
        router.ensure_image()
    return cached


def _up(
    engine: Engine,
    catalog: Catalog,
    config: Config,
    launch: Launch,
    options: StartOptions,
    cached: bool,
) -> None:
    """Hand the token over, write the compose file, then `compose up -d`."""
    env = dict(launch.env)
    env["TOOLKIT_HF_HUB_OFFLINE"] = "1" if cached else "0"
    if config.gated:
        env["HF_TOKEN_FILE"] = str(hand_over_token(config.name, launch.token))
    env["TOOLKIT_KEYED"] = "true" if options.api_key else "false"
    compose_file = state_dir() / "compose" / f"{config.name}.yaml"
    compose_file.parent.mkdir(parents=True, exist_ok=True)
    from toolkit.render import compose as render

    backend = catalog.backend(config)
    # More than one replica: the router publishes the service (toolkit/service/replicas.py).
    rendered = render.render_compose(catalog, config, options.replicas, options.policy)
    if options.api_key:  # the authenticating proxy publishes it (toolkit/lifecycle/proxy.py)
        rendered = proxy.set_up(rendered, config, backend, options.api_key)
    compose_file.write_text(rendered, encoding="utf-8")
    try:
        result = run_compose(
            ["-p", config.project, "up", "-d", "--no-build"],
            env=env,
            capture=True,
            project_file=compose_file,
        )
        # Compose can exit 0 without creating the container (an engine too old for a key, say).
        if result.returncode != 0 or container(engine, config.name) is None:
            raise _with_teardown(
                config.name,
                f"docker compose up did not start {config.name} ({last_line(result)}); "
                "nothing was left running.",
            )
    except KeyboardInterrupt:
        raise _interrupted(config.name) from None


def _wait(
    engine: Engine,
    config: Config,
    service: Service,
    timeout: float,
    api_key: str | None,
    progress: Progress,
    restarts: int = 0,
    own: bool = True,
) -> None:
    """Poll until the model is listed; on a crash or a timeout, stop the service if this
    command started it (`own`), and raise with the server's last log lines."""
    from toolkit.protocols import probe as protocols

    started = time.monotonic()
    while True:
        every = containers(engine, config.name)
        if protocols.model_listed(
            service.protocol, service.url, config.model, api_key
        ) and _replicas_listed(every, service.protocol, config.model):
            return
        crashed = any(c.status in ("exited", "dead") for c in every)
        troubled = [c for c in every if c.status in ("exited", "dead") or c.restart_count]
        found = (troubled or every)[0] if every else None
        elapsed = time.monotonic() - started
        if found is None or crashed or sum(c.restart_count for c in every) > restarts:
            tail = _tail(engine, found)
            raise _fail_wait(
                config.name,
                f"{config.name}'s server {_crash_state(found)} after {elapsed:.0f} s before "
                f"the model answered; its last log lines:\n{tail}",
                own,
            )
        if elapsed > timeout:
            tail = _tail(engine, found)
            raise _fail_wait(
                config.name,
                f"{config.name} did not list {config.model} within {timeout:.0f} s; "
                f"its last log lines:\n{tail}",
                own,
                "raise --timeout if the model needs longer to load.",
            )
        progress(elapsed, f"waiting for {config.model}: {_last_line(engine, found)}")
        time.sleep(POLL_SECONDS)


def _replicas_listed(found: list[Container], protocol: str, model: str) -> bool:
    """Whether each replica behind the router lists the model, asked at its own address (none
    publishes a port): the router answers as soon as one does, and a start waits for all."""
    from toolkit.protocols import probe as protocols

    replicas = [c for c in found if names.label("replica") in c.labels]
    return all(
        (url := own_url(c)) and protocols.model_listed(protocol, url, model, None) for c in replicas
    )


def _interrupted(name: str) -> ToolkitError:
    """Ctrl-C while starting: tear down like a failure, and exit 130."""
    return _with_teardown(
        name, f"interrupted; {name} was stopped, so nothing is left running.", Interrupted
    )


def _fail_wait(name: str, message: str, own: bool, hint: str = "") -> ToolkitError:
    if not own:
        return EngineError(
            f"{message}\nIt was running before this command, so it was left as it is"
            + (f"; {hint}" if hint else ".")
        )
    return _with_teardown(
        name, f"{message}\nThe service was stopped" + (f"; {hint}" if hint else ".")
    )


def _with_teardown(name: str, message: str, kind: type[ToolkitError] = EngineError) -> ToolkitError:
    """Stop the service after a failure; a failing teardown is added to, never replaces, the
    message that says why (and carries the log tail)."""
    try:
        down(name)
    except ToolkitError as exc:
        message += f"\nStopping it failed too ({exc}); run 'toolkit stop {name}'."
    handed_token(name).unlink(missing_ok=True)
    proxy.remove_key(name)
    return kind(message)


def _crash_state(found: Container | None) -> str:
    if found is None:
        return "is gone"
    if found.status in ("exited", "dead"):
        return f"exited (exit code {found.exit_code})"
    return f"crashed (Docker restarted it {found.restart_count} time(s))"


def _tail(engine: Engine, found: Container | None, lines: int = LOG_TAIL) -> str:
    if found is None:
        return "(no container)"
    try:
        text = "".join(engine.logs(found.id, tail=lines)).rstrip()
    except EngineError:
        return "(the logs could not be read)"
    return text or "(no output)"


def _last_line(engine: Engine, found: Container) -> str:
    """The newest log line that is not the access log of readiness polls and healthchecks."""
    lines = [line for line in _tail(engine, found, 20).splitlines() if not line_is_poll(line)]
    return lines[-1][:120] if lines else "(no output)"


def line_is_poll(line: str) -> bool:
    return any(path in line for path in POLL_PATHS)


def stderr_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
