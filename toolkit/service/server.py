"""What a config's server runs: its command line, environment, model mount and healthcheck.

The backend descriptor (toolkit/catalog/backends.py) holds these as format strings; here they are
filled with one config's values. Rendering, the multi-node roles, `pull` and the bench ask here,
so a descriptor stays data and the catalog model never depends on what is built from it.
"""

from __future__ import annotations

import json

from toolkit.catalog.backends import Backend
from toolkit.catalog.configs import Config


def _values(config: Config, backend: Backend) -> dict[str, str]:
    device = ""
    if backend.device is not None:
        device = backend.device.gpu if config.gpus else backend.device.cpu
    return {
        "source": config.source.reference,
        "model": config.model,
        "port": str(backend.container_port),
        "device": device,
        "revision": config.source.revision or "",
        "ollama": config.source.ollama or "",
    }


def _fill(words: list[str], config: Config, backend: Backend, **given: str) -> list[str]:
    values = _values(config, backend) | given
    return [word.format_map(values) for word in words]


def server_command(config: Config, backend: Backend) -> list[str]:
    """The arguments after the image's entrypoint that serve this config."""
    command = _fill(backend.command, config, backend)
    if config.source.revision:
        command += _fill(backend.revision_args, config, backend)
    return command + engine_flags(config) if backend.engine_args else command


def server_env(config: Config, backend: Backend) -> dict[str, str]:
    """Environment the image's server reads, baked into the image (never a secret)."""
    values = _values(config, backend)
    env = {"HF_HOME": "/cache/huggingface"}
    env |= {key: value.format_map(values) for key, value in backend.env.items()}
    if config.source.revision:
        env |= {key: value.format_map(values) for key, value in backend.revision_env.items()}
    env |= config.env
    return dict(sorted(env.items()))


def model_mount(config: Config, backend: Backend) -> str | None:
    """Where a local model directory is mounted in the container, if the config has one."""
    if not config.source.local:
        return None
    return backend.model_mount.format_map(_values(config, backend))


def health_test(config: Config, backend: Backend, port: str | None = None) -> list[str]:
    """The healthcheck's words; its placeholders are whole words, arguments of the check's
    script (configs/_backends.yaml), so the served name never becomes code. port: the port
    it checks, where the server does not listen on its container port."""
    given = {"port": port} if port is not None else {}
    return _fill(backend.healthcheck, config, backend, **given)


def engine_flags(config: Config) -> list[str]:
    """The catalog's engine_args as command-line flags, in the config file's order."""
    args: list[str] = []
    for flag, value in config.engine_args.items():
        if value is False:
            continue
        args.append(f"--{flag}")
        if value is True:
            continue
        if isinstance(value, dict):
            args.append(json.dumps(value, sort_keys=True, separators=(",", ":")))
        elif isinstance(value, list):
            args.extend(str(v) for v in value)
        else:
            args.append(str(value))
    return args
