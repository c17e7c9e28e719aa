"""Every check before anything starts: engine, Compose, GPUs and their memory, port, image, token.

`checks` only checks and writes nothing; the first failure is one sentence. `start` runs the checks
again under the start lock before it writes the compose file and hands the token over.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.catalog import names
from toolkit.errors import UsageError
from toolkit.host.compose import compose_command
from toolkit.host.engine import Engine, EngineError, not_built
from toolkit.lifecycle import proxy
from toolkit.lifecycle.credentials import token_source
from toolkit.lifecycle.running import Service, Started, containers
from toolkit.paths import data_root
from toolkit.service.image import image_ref
from toolkit.service.replicas import DEFAULT_POLICY, gpu_sets

if TYPE_CHECKING:
    from toolkit.catalog.configs import Catalog, Config
    from toolkit.host.gpus import Gpu


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
    replicas: int = 1  # behind the router (toolkit/service/replicas.py)
    policy: str = DEFAULT_POLICY  # the router's


@dataclass(frozen=True)
class Launch:
    """What `start` will run, once every check has passed: the service and its compose variables."""

    service: Service
    env: dict[str, str]
    token: Path | None


def checks(engine: Engine, catalog: Catalog, config: Config, options: StartOptions) -> Launch:
    """Every check before anything starts; the first failure is one sentence. Writes nothing."""
    compose_command()
    wanted = _wanted(config, options)
    ids, port, replicas = wanted.gpus, wanted.port, options.replicas
    needed = config.gpus * replicas
    if len(ids) != needed:
        each = f" for each of {replicas} replicas" if replicas > 1 else ""
        raise EngineError(
            f"{config.name} needs {config.gpus} GPU(s){each} but --gpus names "
            f"{len(ids)} ({','.join(ids) or 'none'}); name exactly {needed}."
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
        check_replicas_fit(config, replicas, host)
        check_driver(config, backend.min_driver, gpus.driver_version())
        for chunk in gpu_sets(ids, config.gpus, replicas):
            check_fit(catalog, config, chunk, host, options.force)
        check_gpus_free(engine, ids)
    if not _port_free(options.bind, port):
        raise EngineError(
            f"port {port} on {options.bind} is already in use; pick another "
            f"with --port or stop what holds it."
        )
    ref = image_ref(config, backend)
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


def checks_or_running(
    engine: Engine, catalog: Catalog, config: Config, options: StartOptions
) -> Launch | Started:
    """The launch plan, or the service that already runs with the same settings."""
    found = containers(engine, config.name)
    if not found:
        return checks(engine, catalog, config, options)
    existing = next((c for c in found if c.status != "running"), found[0])
    if existing.status != "running":
        raise EngineError(
            f"{config.name} is already {existing.status} (container {existing.name}); "
            f"run 'toolkit stop {config.name}' first, or 'toolkit logs {config.name}'."
        )
    replicas = [Service.from_labels(c.labels) for c in found]
    running = replicas[0].whole(replicas)
    wanted = _wanted(config, options)
    differs = _same_settings(running, wanted)
    if differs:
        raise EngineError(
            f"{config.name} is already running, but {differs}; run 'toolkit stop "
            f"{config.name}' first to start it with other settings."
        )
    restarts = sum(c.restart_count for c in found)
    return Started(running, already_running=True, restarts=restarts)


def local_model_dir(config: Config) -> Path:
    local = Path(config.source.local or "")
    return local if local.is_absolute() else data_root() / local


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
    """Publishing beyond loopback needs an API key, which the proxy checks
    (toolkit/lifecycle/proxy.py)."""
    if key:
        proxy.check_key(key)
    if _loopback(bind):
        return
    if not key:
        raise UsageError(
            f"publishing {config.name} on {bind} needs an API key; pass --api-key (or set "
            "TOOLKIT_API_KEY), or keep --bind 127.0.0.1."
        )


def check_replicas_fit(config: Config, replicas: int, host: list[Gpu]) -> None:
    """Refuse, in one sentence, more replicas than this host's GPUs hold (none found: the fit
    check says so)."""
    if replicas == 1 or not host or config.gpus * replicas <= len(host):
        return
    most = len(host) // config.gpus
    advice = f"run at most {most}" if most else "this host cannot hold even one"
    raise EngineError(
        f"{config.name} needs {config.gpus} GPU(s) for each of {replicas} replicas, "
        f"{config.gpus * replicas} in all, and this host has {len(host)}; {advice}."
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
    from toolkit.host import gpus
    from toolkit.plan import memory as plan

    if not host:
        raise EngineError(
            f"{config.name} needs {config.gpus} GPU(s) but no NVIDIA GPU was found "
            "on this host (neither NVML nor nvidia-smi answered); check the driver."
        )
    free = min(gpu.free_gib for gpu in gpus.select(host, ids, EngineError))
    result = plan.plan(config, catalog.backend(config), gpu_memory_gib=free)
    if result.fits is False and not force:  # None: unknown, which is not "cannot hold"
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
    count = config.gpus * options.replicas
    ids = options.gpus if options.gpus is not None else [str(i) for i in range(count)]
    return Service(
        config.name,
        config.model,
        config.protocol.value,
        options.port or config.port,
        ids,
        options.bind,
        config.vision,
        keyed=bool(options.api_key),
        replicas=options.replicas,
    )


def _same_settings(running: Service, wanted: Service) -> str | None:
    """What differs between the running service and the one asked for, or None."""
    if running.replicas != wanted.replicas:
        return f"it runs {running.replicas} replica(s), not {wanted.replicas}"
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
