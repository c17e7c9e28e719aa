"""The lifecycle of a service on the Docker engine: check, start and wait, status, logs, stop.

The engine is asked questions over its API (toolkit.host.engine); Compose v2 does what a user would
do by hand with the rendered file (up, down), so the toolkit and a person running
`docker compose -f compose/X.yaml up -d` act on the same project. `checks` only checks; `start`
writes what the service needs (its compose file, the token file) once every check has passed.
What runs is described by its container's labels, so a running service can be stopped, probed
and read without the catalog it was started from.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.catalog import names
from toolkit.errors import ToolkitError
from toolkit.host import locks
from toolkit.host.compose import ComposeError, compose_command, run_compose
from toolkit.host.engine import Container, Engine, EngineError, VolumeInUse, connect, not_built
from toolkit.lifecycle import proxy
from toolkit.lifecycle import watch as watchdog
from toolkit.paths import data_root, state_dir

if TYPE_CHECKING:  # `status`, `logs` and `stop` need neither the catalog nor the renderer
    from toolkit.catalog.configs import Catalog, Config
    from toolkit.host.gpus import Gpu

__all__ = ["EngineError", "Service", "StartOptions", "start", "status", "stop"]

TOKEN_FILE_DEFAULT = Path.home() / ".cache" / "huggingface" / "token"
LOG_TAIL = 50
POLL_SECONDS = 0.25
# The server's own readiness polls and healthchecks, left out of the progress line.
POLL_PATHS = ("GET /v1/models", "GET /api/tags", "GET /health")


class Interrupted(ToolkitError):
    """The user interrupted a command (Ctrl-C); what it had started was stopped."""

    exit_code = 130


@dataclass(frozen=True)
class StartOptions:
    gpus: list[str] | None = None
    port: int | None = None
    bind: str = "127.0.0.1"
    timeout: float | None = None
    wait: bool = True
    force: bool = False
    api_key: str | None = None
    stall_minutes: float = 10.0  # a download that moves no byte this long is stopped


@dataclass(frozen=True)
class Service:
    """A service as its container's labels describe it: enough to probe, read and stop it."""

    name: str
    model: str
    protocol: str
    port: int
    gpus: list[str]
    bind: str = "127.0.0.1"
    vision: bool = False
    keyed: bool = False  # published through the keyed proxy (toolkit/lifecycle/proxy.py)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.bind == "0.0.0.0" else self.bind
        return f"http://{host}:{self.port}"

    @property
    def project(self) -> str:
        return names.project(self.name)

    @classmethod
    def from_labels(cls, labels: dict[str, str]) -> Service:
        def get(key: str) -> str:
            return labels.get(names.label(key), "")

        return cls(
            name=get("config"),
            model=get("model"),
            protocol=get("protocol"),
            port=int(get("port") or 0),
            gpus=[g for g in get("gpus").split(",") if g],
            bind=get("bind") or "127.0.0.1",
            vision=get("vision") == "true",
            keyed=get("keyed") == "true",
        )


@dataclass(frozen=True)
class Launch:
    """What `start` will run, once every check has passed: the service and its compose variables."""

    service: Service
    env: dict[str, str]
    token: Path | None


# --- what runs ---------------------------------------------------------------------------------


def containers(engine: Engine, name: str | None = None) -> list[Container]:
    """Containers of toolkit services (all states), optionally of one config."""
    return engine.containers(label=names.service_filter(name))


def container(engine: Engine, name: str) -> Container | None:
    found = containers(engine, name)
    return found[0] if found else None


def state_of(name: str) -> str | None:
    """The state of this config's container (running, exited, ...), None where there is none."""
    found = container(connect(), name)
    return found.status if found else None


def running_service(name: str) -> Service | None:
    """The service of this config name that runs now, read from its container's labels."""
    found = container(connect(), name)
    return Service.from_labels(found.labels) if found else None


# --- checks ------------------------------------------------------------------------------------


def checks(engine: Engine, catalog: Catalog, config: Config, options: StartOptions) -> Launch:
    """Every check before anything starts; the first failure is one sentence. Writes nothing."""
    compose_command()
    wanted = _wanted(config, options)
    ids, port = wanted.gpus, wanted.port
    if len(ids) != config.gpus:
        raise EngineError(
            f"{config.name} needs {config.gpus} GPU(s) but --gpus names "
            f"{len(ids)} ({','.join(ids) or 'none'}); name exactly {config.gpus}."
        )
    backend = catalog.backend(config)
    check_exposure(config, backend.api_key_env, options.bind, options.api_key)
    if config.gpus:
        if not _gpu_support(engine):
            raise EngineError(
                f"{config.name} needs {config.gpus} GPU(s) but the Docker engine has neither "
                "the NVIDIA runtime nor NVIDIA CDI devices; install the NVIDIA Container "
                "Toolkit and restart dockerd."
            )
        from toolkit.host import gpus

        host = gpus.discover()
        check_driver(config, backend.min_driver, gpus.driver_version())
        check_fit(catalog, config, ids, host, options.force)
        check_gpus_free(engine, ids)
    if not _port_free(options.bind, port):
        raise EngineError(
            f"port {port} on {options.bind} is already in use; pick another "
            f"with --port or stop what holds it."
        )
    ref = names.image_ref(config, backend)
    if not engine.image_exists(ref):
        raise not_built(ref, config.name)
    env = {
        "TOOLKIT_PORT": str(port),
        "TOOLKIT_BIND_ADDRESS": options.bind,
        "TOOLKIT_GPUS": ",".join(ids),
        "TOOLKIT_API_KEY": options.api_key or "",
    }
    env |= {f"TOOLKIT_GPU_{i}": gpu for i, gpu in enumerate(ids)}
    if config.source.local:
        local = local_model_dir(config)
        if not local.is_dir():
            raise EngineError(
                f"{config.name} serves the local model directory {local}, which "
                "does not exist; create it (make demo does for the demo configs) "
                "or point source.local elsewhere."
            )
        from toolkit.service import hardening

        hardening.check_readable(local, backend.run_as_uid)
        env["TOOLKIT_MODEL_DIR"] = str(local)
    token = token_source(config)
    return Launch(wanted, env, token)


def local_model_dir(config: Config) -> Path:
    local = Path(config.source.local or "")
    return local if local.is_absolute() else data_root() / local


def token_source(config: Config) -> Path | None:
    """The user's Hugging Face token file for a gated model, or None when none is needed or
    HF_TOKEN holds it; start hands either over as a file of its own (hand_over_token)."""
    if not config.gated:
        return None
    path = Path(os.environ.get("HF_TOKEN_FILE") or TOKEN_FILE_DEFAULT).expanduser()
    if path.is_file() and path.read_text(encoding="utf-8").strip():
        return path
    if os.environ.get("HF_TOKEN"):
        return None
    raise EngineError(
        f"{config.model} is gated and no Hugging Face token was found; put your token in "
        f"{TOKEN_FILE_DEFAULT} (huggingface-cli login), or set HF_TOKEN_FILE or HF_TOKEN."
    )


def _handed_token(name: str) -> Path:
    return state_dir() / "secrets" / f"{name}.hf_token"


def _port_free(bind: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind if bind != "0.0.0.0" else "", port))
        except OSError:
            return False
    return True


def _gpu_support(engine: Engine) -> bool:
    info = engine.info()
    if "nvidia" in (info.get("Runtimes") or {}):
        return True
    return any("nvidia" in str(d) for d in info.get("DiscoveredDevices") or [])


def _loopback(address: str) -> bool:
    return address == "localhost" or address.startswith("127.")


def check_exposure(config: Config, api_key_env: str | None, bind: str, key: str | None) -> None:
    """Publishing beyond loopback needs an API key, which the proxy checks (toolkit/lifecycle/proxy.py)."""
    if key:
        proxy.check_key(key)
    if _loopback(bind):
        return
    if not key:
        raise EngineError(
            f"publishing {config.name} on {bind} needs an API key; pass --api-key (or set "
            "TOOLKIT_API_KEY), or keep --bind 127.0.0.1."
        )


def check_driver(config: Config, needed: int | None, found: str | None) -> None:
    """Refuse a driver older than the image's CUDA needs (configs/_backends.yaml min_driver)."""
    if needed is None or found is None:
        return
    try:
        major = int(found.split(".")[0])
    except ValueError:
        return
    if major < needed:
        raise EngineError(
            f"{config.name}'s image needs NVIDIA driver {needed} or newer, and this host has "
            f"{found}; upgrade the driver, or build on an image for an older CUDA "
            "(e.g. --base-image with vLLM's -cu129 tag)."
        )


def check_fit(
    catalog: Catalog, config: Config, ids: list[str], host: list[Gpu], force: bool
) -> None:
    """Refuse, with the numbers, a config the chosen GPUs' free memory cannot hold."""
    from toolkit.plan import memory as plan

    if not host:
        raise EngineError(
            f"{config.name} needs {config.gpus} GPU(s) but no NVIDIA GPU was found "
            "on this host (neither NVML nor nvidia-smi answered); check the driver."
        )
    by_index = {gpu.index: gpu for gpu in host}
    unknown = [i for i in ids if i not in by_index]
    if unknown:
        raise EngineError(
            f"GPU id(s) {','.join(unknown)} do not exist on this host (it has "
            f"{','.join(by_index)}); pick others with --gpus."
        )
    free = min(by_index[i].free_gib for i in ids)
    result = plan.plan(config, catalog.backend(config), gpu_memory_gib=free)
    if not result.fits and not force:
        raise EngineError(
            f"{config.name} does not fit GPU(s) {','.join(ids)} with {free:.1f} GiB free each: "
            f"{'; '.join(result.reasons)}; lower max-model-len, use more GPUs or a quantized "
            "variant (toolkit plan shows the numbers), or pass --force."
        )


def check_gpus_free(engine: Engine, ids: list[str]) -> None:
    """Refuse GPUs that a running toolkit service holds (read from its container labels)."""
    held: dict[str, str] = {}
    for found in containers(engine):
        if found.status in ("running", "restarting", "created"):
            for gpu in Service.from_labels(found.labels).gpus:
                held[gpu] = found.labels.get(names.label("config"), found.name)
    clash = sorted(set(ids) & set(held))
    if clash:
        raise EngineError(
            f"GPU(s) {','.join(clash)} are held by {held[clash[0]]}; pick others with "
            "--gpus or stop that service first."
        )


def _wanted(config: Config, options: StartOptions) -> Service:
    """The service these options ask for."""
    ids = options.gpus if options.gpus is not None else [str(i) for i in range(config.gpus)]
    return Service(
        config.name,
        config.model,
        config.protocol.value,
        options.port or config.port,
        ids,
        options.bind,
        config.vision,
        keyed=bool(options.api_key),
    )


def _same_settings(running: Service, wanted: Service) -> str | None:
    """What differs between the running service and the one asked for, or None."""
    for field, label in (("port", "port"), ("gpus", "GPUs"), ("bind", "bind address")):
        now, asked = getattr(running, field), getattr(wanted, field)
        if now != asked:
            show = (lambda v: ",".join(v) or "none") if field == "gpus" else str
            return f"it runs with {label} {show(now)}, not {show(asked)}"
    if running.keyed != wanted.keyed:
        return (
            "it runs "
            + ("with" if running.keyed else "without")
            + " an API key, not "
            + ("with" if wanted.keyed else "without")
        )
    return None


# --- start -------------------------------------------------------------------------------------

# Called while start waits: seconds since the container started, and what is happening.
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Started:
    service: Service
    already_running: bool = False
    restarts: int = 0  # Docker's restart count when start found it running


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
                watchdog.clear_stopped(config.name)
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

    rendered = render.render_compose(catalog, config)
    if (
        options.api_key
    ):  # the authenticating proxy publishes the service (toolkit/lifecycle/proxy.py)
        rendered = proxy.set_up(rendered, config, catalog.backend(config), options.api_key)
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
            reason = (
                result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no output"
            )
            raise _with_teardown(
                config.name,
                f"docker compose up did not start {config.name} ({reason}); "
                "nothing was left running.",
            )
    except KeyboardInterrupt:
        raise _interrupted(config.name) from None


def checks_or_running(
    engine: Engine, catalog: Catalog, config: Config, options: StartOptions
) -> Launch | Started:
    """The launch plan, or the service that already runs with the same settings."""
    existing = container(engine, config.name)
    if existing is None:
        return checks(engine, catalog, config, options)
    if existing.status != "running":
        raise EngineError(
            f"{config.name} is already {existing.status} (container {existing.name}); "
            f"run 'toolkit stop {config.name}' first, or 'toolkit logs {config.name}'."
        )
    running = Service.from_labels(existing.labels)
    wanted = _wanted(config, options)
    differs = _same_settings(running, wanted)
    if differs:
        raise EngineError(
            f"{config.name} is already running, but {differs}; run 'toolkit stop "
            f"{config.name}' first to start it with other settings."
        )
    return Started(running, already_running=True, restarts=existing.restart_count)


def hand_over_token(name: str, source: Path | None) -> Path:
    """The token (from its file, else HF_TOKEN) as the file the compose secret mounts; never a
    variable. Compose mounts the file with its host mode and the server runs as a non-root uid,
    so it is readable by all (0644), inside a folder only root can enter (0700). stop removes it."""
    token = source.read_text(encoding="utf-8").strip() if source else os.environ["HF_TOKEN"]
    path = _handed_token(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token)
    os.chmod(path, 0o644)
    return path


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
        if protocols.model_listed(service.protocol, service.url, config.model, api_key):
            return
        found = container(engine, config.name)
        elapsed = time.monotonic() - started
        if found is None or found.status in ("exited", "dead") or found.restart_count > restarts:
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
        _down(name)
    except ToolkitError as exc:
        message += f"\nStopping it failed too ({exc}); run 'toolkit stop {name}'."
    _handed_token(name).unlink(missing_ok=True)
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


# --- status, logs, stop ------------------------------------------------------------------------


def status(name: str | None = None) -> list[dict[str, object]]:
    """A row per toolkit container: its service, state, health, URL, GPUs and uptime."""
    engine = connect()
    rows: list[dict[str, object]] = []
    for found in containers(engine, name):
        service = Service.from_labels(found.labels)
        load: dict[str, float] = {}
        if found.status == "running" and names.label("metrics") in found.labels:
            from toolkit.observe import metrics

            load = metrics.load_now(found, service)
        rows.append(
            {
                "config": service.name,
                "model": service.model,
                "protocol": service.protocol,
                "state": found.status,
                "health": _health(found, service),
                "port": service.port,
                "url": service.url,
                "gpus": ",".join(service.gpus) or "cpu",
                "uptime_s": _uptime(found.started_at) if found.status == "running" else 0,
                "container": found.name,
            }
            | watchdog.status_fields(found)
            | {key: load.get(key) for key in ("running", "waiting", "kv_cache")}
        )
    return sorted(rows, key=lambda r: str(r["config"]))


def _health(found: Container, service: Service) -> str:
    """Docker's health, except that a model already listed reads "ready" (what `start` said)
    while Docker's first healthcheck is still to come."""
    if found.status != "running" or found.health != "starting":
        return found.health
    import json
    import urllib.request

    from toolkit.protocols import LISTING, Protocol

    try:
        path = LISTING[Protocol(service.protocol)]
        with urllib.request.urlopen(service.url + path, timeout=1) as answer:
            listed = json.dumps(json.load(answer))
    except (OSError, ValueError, KeyError):
        return found.health
    names_seen = (json.dumps(service.model), json.dumps(f"{service.model}:latest"))
    return "ready" if any(name in listed for name in names_seen) else found.health


def _uptime(started_at: str) -> int:
    try:
        started = dt.datetime.fromisoformat(started_at[:26].rstrip("Z") + "+00:00")
    except ValueError:
        return 0
    return max(0, int((dt.datetime.now(dt.UTC) - started).total_seconds()))


def logs(name: str, follow: bool, tail: int | None) -> Iterator[str]:
    engine = connect()
    found = container(engine, name)
    if found is None:
        raise EngineError(f"{name} is not running; start it with 'toolkit start {name}'.")
    yield from engine.logs(found.id, tail=tail, follow=follow)


def stop(name: str, volumes: bool = False) -> bool:
    """Remove the service's containers and network; True if anything was running.

    With volumes, the shared model cache goes too, unless another service still uses it: then
    nothing is stopped and the error names those services.
    """
    engine = connect()
    if volumes:
        users = sorted(
            {
                c.labels.get(names.label("config"), c.name)
                for c in engine.containers(volume=[names.CACHE_VOLUME])
            }
            - {name}
        )
        if users:
            raise EngineError(
                f"the model cache {names.CACHE_VOLUME} is still used by {', '.join(users)}; "
                "stop those first, then run this again (nothing was stopped)."
            )
    was_running = container(engine, name) is not None
    watchdog.mark_stopped(name)  # before anything stops: the watchdog leaves it stopped
    try:
        _down(name)
    finally:  # what start handed over does not outlive the service, even if down fails
        _handed_token(name).unlink(missing_ok=True)
        proxy.remove_key(name)
    if volumes:
        try:
            engine.remove_volume(names.CACHE_VOLUME)
        except VolumeInUse as exc:
            raise EngineError(
                f"{name} was stopped, but the model cache {names.CACHE_VOLUME} is in use "
                f"({exc}); stop what uses it, then run this again."
            ) from None
    return was_running


def _down(name: str) -> None:
    result = run_compose(
        ["-p", names.project(name), "down", "--remove-orphans", "--timeout", "10"], capture=True
    )
    if result.returncode != 0:
        raise ComposeError(f"docker compose down failed for {name}: {result.stderr.strip()}")


def stderr_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
