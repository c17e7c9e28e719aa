"""The Docker engine side: build, preflight, start and wait, status, logs, stop.

The Docker SDK answers questions (is the engine up, which containers run, their logs); Compose v2
does what a user would do by hand with the rendered file (build, up, down), so the toolkit and a
person running `docker compose -f compose/X.yaml up -d` act on the same project.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit import render
from toolkit.catalog import Catalog, Config
from toolkit.compose import ComposeError, compose_command
from toolkit.errors import ToolkitError
from toolkit.gpus import Gpu, discover
from toolkit.paths import REPO_ROOT, state_dir

LABEL = render.LABEL_PREFIX
TOKEN_FILE_DEFAULT = Path.home() / ".cache" / "huggingface" / "token"
LOG_TAIL = 50
POLL_SECONDS = 0.25
DEFAULT_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


class EngineError(ToolkitError):
    """The engine is unreachable, or a lifecycle step failed."""


# --- the engine --------------------------------------------------------------------------------


def client() -> Any:
    """A Docker SDK client for an engine that answers, or one sentence saying what to do."""
    import docker

    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        engine = docker.from_env(timeout=30)
        engine.ping()
    except Exception:
        raise EngineError(
            f"the Docker engine at {where} is not reachable; start dockerd (or fix DOCKER_HOST) "
            "and try again."
        ) from None
    return engine


def _compose(
    args: list[str],
    env: dict[str, str] | None = None,
    capture: bool = False,
    project_file: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    command = [*compose_command()]
    if project_file is not None:
        command += ["--project-directory", str(REPO_ROOT / "compose"), "-f", str(project_file)]
    merged = {**os.environ, **(env or {})}
    return subprocess.run(
        [*command, *args], env=merged, text=True, check=False, capture_output=capture
    )


# --- build -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildOptions:
    no_cache: bool = False
    ca_bundle: Path | None = None
    pip_index_url: str | None = None
    wheelhouse: Path | None = None
    base_image: str | None = None
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()


def git(*args: str) -> str:
    try:
        result = subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except OSError:
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def build(catalog: Catalog, config: Config, options: BuildOptions) -> str:
    """Build the config's image from a copy of its build context; return the image reference."""
    if options.ca_bundle is not None and not options.ca_bundle.is_file():
        raise EngineError(
            f"CA bundle {options.ca_bundle} is not a file; pass the PEM bundle "
            "your proxy's certificate is in (e.g. /etc/ssl/certs/ca-certificates.crt)."
        )
    if options.wheelhouse is not None and not options.wheelhouse.is_dir():
        raise EngineError(
            f"wheelhouse {options.wheelhouse} is not a directory; pass a folder of .whl files."
        )
    client()
    ref = render.image_ref(catalog, config)
    backend_dir = render.IMAGES_DIR / config.backend.value
    with tempfile.TemporaryDirectory(prefix="toolkit-build-") as scratch:
        context = Path(scratch) / "context"
        shutil.copytree(backend_dir, context, ignore=shutil.ignore_patterns("*.Dockerfile", "*.j2"))
        (context / "Dockerfile").write_text(
            render.render_dockerfile(catalog, config), encoding="utf-8"
        )
        wheels = context / "wheelhouse"
        wheels.mkdir(exist_ok=True)
        if options.wheelhouse:
            for wheel in options.wheelhouse.glob("*.whl"):
                _link_or_copy(wheel, wheels / wheel.name)
        spec = _build_spec(catalog, config, ref, context, options)
        spec_file = Path(scratch) / "build.yaml"
        spec_file.write_text(render.to_json(spec), encoding="utf-8")
        args = ["--progress", "plain", "build"] + (["--no-cache"] if options.no_cache else [])
        result = _compose(["-f", str(spec_file), *args])
    if result.returncode != 0:
        raise EngineError(
            f"building {ref} failed (exit {result.returncode}); the build output above says where."
        )
    return ref


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _build_spec(
    catalog: Catalog, config: Config, ref: str, context: Path, options: BuildOptions
) -> dict[str, Any]:
    args: dict[str, str] = {}
    if options.base_image:
        args["BASE_IMAGE"] = options.base_image
    revision = git("rev-parse", "HEAD")
    labels = {
        "org.opencontainers.image.created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "org.opencontainers.image.revision": revision or "unknown",
        "org.opencontainers.image.source": git("remote", "get-url", "origin") or "unknown",
    }
    build: dict[str, Any] = {
        "context": str(context),
        "dockerfile": "Dockerfile",
        "args": args,
        "labels": labels,
    }
    if options.cache_from:
        build["cache_from"] = list(options.cache_from)
    if options.cache_to:
        build["cache_to"] = list(options.cache_to)
    spec: dict[str, Any] = {
        "name": config.project + "-build",
        "services": {"model": {"image": ref, "build": build}},
    }
    if render.pip_build(catalog, config):
        bundle = options.ca_bundle or Path(os.environ.get("TOOLKIT_CA_BUNDLE", DEFAULT_CA_BUNDLE))
        if not bundle.is_file():  # no bundle: the secret is empty and pip trusts its own CAs
            bundle = Path(os.devnull)
        pip_config = context.parent / "pip.conf"  # outside the build context
        pip_config.write_text(
            f"[global]\nindex-url = {options.pip_index_url}\n" if options.pip_index_url else "",
            encoding="utf-8",
        )
        build["secrets"] = ["ca_bundle", "pip_config"]
        spec["secrets"] = {
            "ca_bundle": {"file": str(bundle)},
            "pip_config": {"file": str(pip_config)},
        }
    return spec


# --- start -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartOptions:
    gpus: list[str] | None = None
    port: int | None = None
    bind: str = "127.0.0.1"
    timeout: float | None = None
    wait: bool = True
    force: bool = False
    api_key: str | None = None


@dataclass(frozen=True)
class Service:
    """What start will run: the compose file, its variables, and where the model answers."""

    config: Config
    compose_file: Path
    env: dict[str, str]
    port: int
    gpus: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def built_image(engine: Any, catalog: Catalog, config: Config) -> Any:
    """The config's local image, or one sentence saying to build it."""
    ref = render.image_ref(catalog, config)
    try:
        return engine.images.get(ref)
    except Exception:
        raise EngineError(
            f"image {ref} is not built; run 'toolkit build {config.name}' first."
        ) from None


def running(engine: Any, name: str | None = None) -> list[Any]:
    """Containers of toolkit services (all states), optionally of one config."""
    selector = f"{LABEL}.config" + (f"={name}" if name else "")
    containers: list[Any] = engine.containers.list(all=True, filters={"label": selector})
    return containers


def token_file(config: Config) -> Path | None:
    """The Hugging Face token file for a gated model, or None when none is needed."""
    if not config.gated:
        return None
    path = Path(os.environ.get("HF_TOKEN_FILE") or TOKEN_FILE_DEFAULT).expanduser()
    if path.is_file() and path.read_text(encoding="utf-8").strip():
        return path
    token = os.environ.get("HF_TOKEN")
    if token:
        # HF_TOKEN in the environment: hand it over as a 0600 file, never as a variable.
        path = state_dir() / "hf_token"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(token)
        return path
    raise EngineError(
        f"{config.model} is gated and no Hugging Face token was found; put your token in "
        f"{TOKEN_FILE_DEFAULT} (huggingface-cli login), or set HF_TOKEN_FILE or HF_TOKEN."
    )


def _port_free(bind: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind if bind != "0.0.0.0" else "", port))
        except OSError:
            return False
    return True


def _gpu_support(engine: Any) -> bool:
    info = engine.info()
    if "nvidia" in (info.get("Runtimes") or {}):
        return True
    return any("nvidia" in str(d) for d in info.get("DiscoveredDevices") or [])


def preflight(catalog: Catalog, config: Config, options: StartOptions) -> tuple[Any, Service]:
    """Every check before anything starts; the first failure is one sentence and exit 1."""
    engine = client()
    compose_command()
    existing = _container(engine, config)
    if existing is not None:
        raise EngineError(
            f"{config.name} is already {existing.status} (container {existing.name}); "
            f"run 'toolkit stop {config.name}' first, or 'toolkit probe {config.name}'."
        )
    gpus = options.gpus if options.gpus is not None else [str(i) for i in range(config.gpus)]
    if len(gpus) != config.gpus:
        raise EngineError(
            f"{config.name} needs {config.gpus} GPU(s) but --gpus names "
            f"{len(gpus)} ({','.join(gpus) or 'none'}); name exactly {config.gpus}."
        )
    if config.gpus:
        if not _gpu_support(engine):
            raise EngineError(
                f"{config.name} needs {config.gpus} GPU(s) but the Docker engine has neither "
                "the NVIDIA runtime nor NVIDIA CDI devices; install the NVIDIA Container "
                "Toolkit and restart dockerd."
            )
        check_fit(config, gpus, discover(), options.force)
        check_gpus_free(engine, gpus)
    check_exposure(config, options.bind, options.api_key)
    port = options.port or config.port
    if not _port_free(options.bind, port):
        raise EngineError(
            f"port {port} on {options.bind} is already in use; pick another "
            f"with --port or stop what holds it."
        )
    built_image(engine, catalog, config)
    env = {
        "TOOLKIT_PORT": str(port),
        "TOOLKIT_BIND_ADDRESS": options.bind,
        "TOOLKIT_GPUS": ",".join(gpus),
        "TOOLKIT_API_KEY": options.api_key or "",
    }
    env |= {f"TOOLKIT_GPU_{i}": gpu for i, gpu in enumerate(gpus)}
    if config.source.local:
        local = Path(config.source.local)
        local = local if local.is_absolute() else REPO_ROOT / local
        if not local.is_dir():
            raise EngineError(
                f"{config.name} serves the local model directory {local}, which "
                "does not exist; create it (make demo does for the demo configs) "
                "or point source.local elsewhere."
            )
        env["TOOLKIT_MODEL_DIR"] = str(local)
    token = token_file(config)
    if token:
        env["HF_TOKEN_FILE"] = str(token)
    compose_file = state_dir() / "compose" / f"{config.name}.yaml"
    compose_file.parent.mkdir(parents=True, exist_ok=True)
    compose_file.write_text(render.render_compose(catalog, config), encoding="utf-8")
    return engine, Service(config, compose_file, env, port, gpus)


def _loopback(address: str) -> bool:
    return address == "localhost" or address == "::1" or address.startswith("127.")


def check_exposure(config: Config, bind: str, api_key: str | None) -> None:
    """Publishing beyond loopback needs an API key, and a server that can check one."""
    if _loopback(bind):
        return
    if not render.takes_api_key(config):
        raise EngineError(
            f"{config.name}'s server ({config.backend}) has no authentication, so it cannot be "
            f"published on {bind}; keep --bind 127.0.0.1 and put an authenticating proxy in front."
        )
    if not api_key:
        raise EngineError(
            f"publishing {config.name} on {bind} needs an API key; pass --api-key (or set "
            "TOOLKIT_API_KEY), or keep --bind 127.0.0.1."
        )


def check_fit(config: Config, ids: list[str], host: list[Gpu], force: bool) -> None:
    """Refuse, with the numbers, a config the chosen GPUs' free memory cannot hold."""
    from toolkit import plan

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
    result = plan.plan(config, gpu_memory_gib=free)
    if not result.fits and not force:
        raise EngineError(
            f"{config.name} does not fit GPU(s) {','.join(ids)} with {free:.1f} GiB free each: "
            f"{'; '.join(result.reasons)}; lower max-model-len, use more GPUs or a quantized "
            "variant (toolkit plan shows the numbers), or pass --force."
        )


def check_gpus_free(engine: Any, gpus: list[str]) -> None:
    """Refuse GPUs that a running toolkit service holds (read from its container labels)."""
    held = _gpus_in_use(engine)
    clash = sorted(set(gpus) & set(held))
    if clash:
        raise EngineError(
            f"GPU(s) {','.join(clash)} are held by {held[clash[0]]}; pick others with "
            "--gpus or stop that service first."
        )


def _gpus_in_use(engine: Any) -> dict[str, str]:
    held: dict[str, str] = {}
    for container in running(engine):
        if container.status not in ("running", "restarting", "created"):
            continue
        labels = container.labels
        for gpu in filter(None, labels.get(f"{LABEL}.gpus", "").split(",")):
            held[gpu] = labels.get(f"{LABEL}.config", container.name)
    return held


Progress = Callable[[str], None]


def start(catalog: Catalog, config: Config, options: StartOptions, progress: Progress) -> Service:
    """Preflight, `compose up -d`, then wait until the model is listed by the server."""
    from toolkit import protocols

    engine, service = preflight(catalog, config, options)
    result = _compose(
        ["-p", config.project, "up", "-d", "--no-build"],
        env=service.env,
        capture=True,
        project_file=service.compose_file,
    )
    # Compose can exit 0 without creating the container (an engine too old for a key, say).
    if result.returncode != 0 or _container(engine, config) is None:
        _down(config)
        reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no output"
        raise EngineError(
            f"docker compose up did not start {config.name} ({reason}); nothing was left running."
        )
    if not options.wait:
        return service
    timeout = options.timeout if options.timeout is not None else config.startup_seconds
    started = time.monotonic()
    last_report = 0.0
    while True:
        if protocols.model_listed(
            config.protocol.value, service.url, config.model, options.api_key
        ):
            return service
        container = _container(engine, config)
        elapsed = time.monotonic() - started
        if container is None or container.status in ("exited", "dead") or _restarted(container):
            tail = _tail(container)
            _down(config)
            state = _crash_state(container)
            raise EngineError(
                f"{config.name}'s server {state} after {elapsed:.0f} s before "
                f"the model answered; its last log lines:\n{tail}\n"
                "The service was stopped."
            )
        if elapsed > timeout:
            tail = _tail(container)
            _down(config)
            raise EngineError(
                f"{config.name} did not list {config.model} within {timeout:.0f} s; "
                f"its last log lines:\n{tail}\nThe service was stopped; raise "
                "--timeout if the model needs longer to load."
            )
        if elapsed - last_report >= 5 or last_report == 0:
            progress(f"[{elapsed:5.1f} s] waiting for {config.model}: {_last_line(container)}")
            last_report = elapsed or 1e-9
        time.sleep(POLL_SECONDS)


def _container(engine: Any, config: Config) -> Any:
    containers = running(engine, config.name)
    if not containers:
        return None
    container = containers[0]
    container.reload()
    return container


def _restarted(container: Any) -> bool:
    return int(container.attrs.get("RestartCount", 0)) > 0


def _crash_state(container: Any) -> str:
    if container is None:
        return "is gone"
    if container.status in ("exited", "dead"):
        return f"exited (exit code {container.attrs.get('State', {}).get('ExitCode', '?')})"
    return f"crashed (Docker restarted it {container.attrs.get('RestartCount', 0)} time(s))"


def _tail(container: Any, lines: int = LOG_TAIL) -> str:
    if container is None:
        return "(no container)"
    text: str = container.logs(tail=lines).decode("utf-8", "replace").rstrip()
    return text or "(no output)"


def _last_line(container: Any) -> str:
    """The newest log line that is not the access log of the toolkit's own readiness polls."""
    lines = [
        line
        for line in _tail(container, 20).splitlines()
        if "GET /v1/models" not in line and "GET /api/tags" not in line
    ]
    return lines[-1][:120] if lines else "(no output)"


# --- status, logs, stop ------------------------------------------------------------------------


def status(name: str | None = None) -> list[dict[str, Any]]:
    engine = client()
    rows = []
    for container in running(engine, name):
        labels = container.labels
        state = container.attrs.get("State", {})
        started = state.get("StartedAt", "")
        rows.append(
            {
                "config": labels.get(f"{LABEL}.config", ""),
                "model": labels.get(f"{LABEL}.model", ""),
                "protocol": labels.get(f"{LABEL}.protocol", ""),
                "state": container.status,
                "health": (state.get("Health") or {}).get("Status", "none"),
                "port": int(labels.get(f"{LABEL}.port", "0") or 0),
                "gpus": labels.get(f"{LABEL}.gpus", ""),
                "uptime_s": _uptime(started) if container.status == "running" else 0,
                "container": container.name,
            }
        )
    return sorted(rows, key=lambda r: r["config"])


def _uptime(started_at: str) -> int:
    try:
        started = dt.datetime.fromisoformat(started_at[:26].rstrip("Z") + "+00:00")
    except ValueError:
        return 0
    return max(0, int((dt.datetime.now(dt.UTC) - started).total_seconds()))


def logs(config: Config, follow: bool, tail: int) -> Iterator[str]:
    engine = client()
    container = _container(engine, config)
    if container is None:
        raise EngineError(
            f"{config.name} is not running; start it with 'toolkit start {config.name}'."
        )
    if not follow:
        yield container.logs(tail=tail).decode("utf-8", "replace")
        return
    for chunk in container.logs(stream=True, follow=True, tail=tail):
        yield chunk.decode("utf-8", "replace")


def stop(config: Config, volumes: bool = False) -> bool:
    """Remove the service's containers and network; True if anything was running."""
    engine = client()
    was_running = bool(running(engine, config.name))
    _down(config)
    if volumes:
        with contextlib.suppress(Exception):
            engine.volumes.get(render.CACHE_VOLUME).remove()
    return was_running


def _down(config: Config) -> None:
    result = _compose(
        ["-p", config.project, "down", "--remove-orphans", "--timeout", "10"], capture=True
    )
    if result.returncode != 0:
        raise ComposeError(f"docker compose down failed for {config.name}: {result.stderr.strip()}")


def stderr_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
