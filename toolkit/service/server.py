"""What a config's server runs: its command line, environment, model mount and healthcheck.

The backend descriptor (toolkit/catalog/backends.py) holds these as format strings; here they are
filled with one config's values. Rendering, the multi-node roles, `pull` and the bench ask here,
so a descriptor stays data and the catalog model never depends on what is built from it.
"""

from __future__ import annotations

import json

from toolkit.catalog.backends import Backend
from toolkit.catalog.configs import Config, engine_options


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


def _fill(words: list[str], config: Config, backend: Backend) -> list[str]:
    values = _values(config, backend)
    return [word.format_map(values) for word in words]


def server_command(config: Config, backend: Backend) -> list[str]:
    """The arguments after the image's entrypoint that serve this config."""
    command = _fill(backend.command, config, backend)
    if config.source.revision:
        command += _fill(backend.revision_args, config, backend)
    return command + engine_flags(config, backend) if backend.engine_args else command


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


def health_test(config: Config, backend: Backend) -> list[str]:
    return _fill(backend.healthcheck, config, backend)


def derived_args(config: Config, backend: Backend) -> dict[str, int]:
    """Engine arguments the config leaves to its GPU count: the tensor-parallel size of a
    multi-GPU config on one host without pipeline stages (validation refuses one that disagrees;
    across hosts or with stages the config gives TP x PP itself)."""
    flag, stages = backend.parallel_flag, backend.pipeline_flag
    if not flag or config.gpus < 2 or flag in config.engine_args or config.nodes > 1:
        return {}
    if stages and stages in config.engine_args:
        return {}
    return {flag: config.gpus}


def engine_flags(config: Config, backend: Backend) -> list[str]:
    """The catalog's engine_args as command-line flags, in the config file's order, then any
    derived from the GPU count. `false` is the flag's negation where the server has one
    (`--no-X`, or `--disable-X` for an `--enable-X`, as its options file says), so it turns off
    what is on by default (vLLM's prefix caching, say); elsewhere it leaves the flag out."""
    known = engine_options(backend.engine_options).options if backend.engine_options else None
    args: list[str] = []
    for flag, value in (config.engine_args | derived_args(config, backend)).items():
        if value is False:
            off = [f for f in (f"no-{flag}", _disable(flag)) if known and f in known]
            args.extend(f"--{f}" for f in off[:1])
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


def _disable(flag: str) -> str:
    return "disable-" + flag.removeprefix("enable-") if flag.startswith("enable-") else ""
