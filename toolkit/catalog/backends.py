"""Backends as data: one descriptor per server, read from configs/_backends.yaml.

A descriptor says everything the toolkit needs to know about a server: the protocols it serves,
the sources it loads, its container port, how its image is built (a pinned base image, plus
Python packages when it has any), how its command line and environment are made, the API-key
variable it checks, its healthcheck, and how `plan` estimates its memory. Catalog validation,
rendering, the plan and the engine ask the descriptor; none of them branches on a backend's name.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from toolkit.protocols import Protocol
from toolkit.service.hardening import Runtime

if TYPE_CHECKING:
    from toolkit.catalog.configs import Config


SourceKind = Literal["hf", "modelscope", "ollama", "local"]
Port = Annotated[int, Field(ge=1, le=65535)]


class Devices(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gpu: str
    cpu: str


class Metrics(BaseModel):
    """What a server reports of itself, for `toolkit metrics` (toolkit/observe/metrics.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # prometheus: Prometheus text at `path`; ollama-ps: Ollama's loaded models (JSON) at `path`.
    format: Literal["prometheus", "ollama-ps"]
    path: Annotated[str, Field(pattern=r"^/[A-Za-z0-9/_.-]*$")]
    # For prometheus: the server's metric of each figure (running, waiting, kv_cache: gauges;
    # ttft, itl: histograms; generation_tokens, prompt_tokens: counters).
    names: dict[
        Literal[
            "running", "waiting", "kv_cache", "ttft", "itl", "generation_tokens", "prompt_tokens"
        ],
        str,
    ] = {}


class Backend(BaseModel):
    """One backend's descriptor (an entry of configs/_backends.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    # Build context and template: images/<template>/ (default: the backend's own name).
    template: str | None = None
    base: Annotated[str, Field(pattern=r"^[a-z0-9./_-]+:[A-Za-z0-9._-]+$")]
    container_port: Port
    # Python packages the image installs; a backend with packages builds with pip (and so takes
    # the CA bundle, the pip index and the wheelhouse).
    packages: dict[str, str] = {}
    # A lock file in the build context, installed with --no-deps beside the packages.
    requirements: str | None = None
    # Debian packages a Python image installs first (shared libraries its wheels load).
    system_packages: list[str] = []
    # The oldest NVIDIA driver the image's CUDA runs on, where the image uses CUDA.
    min_driver: Annotated[int, Field(gt=0)] | None = None
    protocols: Annotated[list[Protocol], Field(min_length=1)]
    sources: Annotated[list[SourceKind], Field(min_length=1)]
    # Whether the config's engine_args become command-line flags of the server.
    engine_args: bool = False
    # A file in configs/ listing the server's own options (e.g. vllm-facts.json, written by
    # scripts/make-vllm-facts.py): an engine argument must be one of them.
    engine_options: str | None = None
    # The engine argument that must equal the GPU count on multi-GPU configs.
    parallel_flag: str | None = None
    # The engine argument that splits the model's layers into pipeline stages (one per host
    # when the config spans hosts); with it, parallel_flag x stages must use every GPU.
    pipeline_flag: str | None = None
    min_gpus: Annotated[int, Field(ge=0)] = 0
    # The image's entrypoint, where a command must run it itself (the multi-node leader does).
    entrypoint: list[str] | None = None
    # Whether one model can span hosts (`nodes:` > 1) as a Ray cluster: the leader starts the
    # Ray head and runs `entrypoint` + the server command once every GPU has joined.
    multi_node: bool = False
    command: list[str] = []
    revision_args: list[str] = []
    device: Devices | None = None
    env: dict[str, str] = {}
    revision_env: dict[str, str] = {}
    model_mount: str = "/models/local"
    # The environment variable through which the server checks a bearer token; None: no auth.
    api_key_env: str | None = None
    # The uid the image's server runs as (it writes only to /cache and $HOME); the image makes
    # that user and /cache owned by it. None: it needs root (its caches live there).
    run_as_uid: Annotated[int, Field(ge=1)] | None = None
    # Container confinement and healthcheck timing (toolkit/service/hardening.py).
    runtime: Runtime = Runtime()
    healthcheck: Annotated[list[str], Field(min_length=2)]
    # How `toolkit pull` fills the model cache, per source kind: the command a one-off
    # container of the config's image runs ({script}: toolkit/lifecycle/hubpull.py's text). A source kind
    # without an entry is fetched by the server itself when it starts.
    pull: dict[SourceKind, Annotated[list[str], Field(min_length=1)]] = {}
    # Where the server reports its own figures; None: it reports none (restarts and GPUs only).
    metrics: Metrics | None = None
    # How `plan` estimates memory: vLLM's budget model, or weights plus a fixed overhead
    # (and the KV cache of kv_context tokens).
    memory: Literal["vllm", "weights"]
    overhead_gib: Annotated[float, Field(ge=0)] = 0.0
    kv_context: Annotated[int, Field(ge=0)] = 0
    # What a CPU-only config (gpus: 0) gets instead: this entry with the `cpu:` fields laid
    # over it (configs/_backends.yaml), rendered from the same template.
    cpu: Backend | None = None

    @field_validator("multi_node")
    @classmethod
    def _multi_node_complete(cls, value: bool, info: ValidationInfo) -> bool:
        needed = ("parallel_flag", "pipeline_flag", "entrypoint")
        missing = [key for key in needed if not info.data.get(key)]
        if value and missing:
            raise ValueError(f"a multi-node backend must also set {' and '.join(missing)}")
        return value

    @property
    def context(self) -> str:
        """The build context's folder under images/, which holds the template."""
        return self.template or self.name

    @property
    def version(self) -> str:
        """The backend's version, the default image tag: its package's, else the base's tag."""
        for package, version in self.packages.items():
            if package.split("[")[0] in (self.name, f"{self.name}-cpu"):
                return version
        return self.base.rsplit(":", 1)[1]

    def for_gpus(self, gpus: int) -> Backend:
        """The descriptor a config of this many GPUs gets: the CPU variant for none."""
        return self.cpu if gpus == 0 and self.cpu is not None else self

    @property
    def pip_build(self) -> bool:
        return bool(self.packages)

    def _values(self, config: Config) -> dict[str, str]:
        device = ""
        if self.device is not None:
            device = self.device.gpu if config.gpus else self.device.cpu
        return {
            "source": config.source.reference,
            "model": config.model,
            "port": str(self.container_port),
            "device": device,
            "revision": config.source.revision or "",
            "ollama": config.source.ollama or "",
        }

    def _fill(self, words: list[str], config: Config) -> list[str]:
        values = self._values(config)
        return [word.format_map(values) for word in words]

    def server_command(self, config: Config) -> list[str]:
        """The arguments after the image's entrypoint that serve this config."""
        command = self._fill(self.command, config)
        if config.source.revision:
            command += self._fill(self.revision_args, config)
        return command + engine_flags(config) if self.engine_args else command

    def server_env(self, config: Config) -> dict[str, str]:
        """Environment the image's server reads, baked into the image (never a secret)."""
        values = self._values(config)
        env = {"HF_HOME": "/cache/huggingface"}
        env |= {key: value.format_map(values) for key, value in self.env.items()}
        if config.source.revision:
            env |= {key: value.format_map(values) for key, value in self.revision_env.items()}
        env |= config.env
        return dict(sorted(env.items()))

    def mount(self, config: Config) -> str | None:
        """Where a local model directory is mounted in the container, if the config has one."""
        if not config.source.local:
            return None
        return self.model_mount.format_map(self._values(config))

    def health_test(self, config: Config) -> list[str]:
        return self._fill(self.healthcheck, config)


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
