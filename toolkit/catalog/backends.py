"""Backends as data: one descriptor per server, read from configs/_backends.yaml.

A descriptor says everything the toolkit needs to know about a server: the protocols it serves,
the sources it loads, its container port, how its image is built (a pinned base image, plus
Python packages when it has any), how its command line and environment are made, the API-key
variable it checks, its healthcheck, and how `plan` estimates its memory. Catalog validation,
rendering, the plan and the engine ask the descriptor; none of them branches on a backend's name.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from toolkit.protocols import Protocol

SourceKind = Literal["hf", "modelscope", "ollama", "local"]
Port = Annotated[int, Field(ge=1, le=65535)]
MemorySize = Annotated[str, Field(pattern=r"^[0-9]+[kmg]$")]


class Runtime(BaseModel):
    """A backend's container confinement and healthcheck timing (its `runtime:` block)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Capabilities the server needs back after `cap_drop: [ALL]` (none of ours does).
    cap_add: list[Annotated[str, Field(pattern=r"^[A-Z_]+$")]] = []
    # Whether the root filesystem can be read-only: the server writes only to /cache and tmpfs.
    read_only: bool = False
    # Scratch directories mounted as tmpfs (on a read-only root filesystem, its only writable
    # places beside /cache and /dev/shm).
    tmpfs: list[Annotated[str, Field(pattern=r"^/[A-Za-z0-9._/-]*$")]] = ["/tmp"]
    # Processes and threads in the container: room for big thread pools, none for a fork bomb.
    pids_limit: Annotated[int, Field(ge=64)] = 4096
    # A CPU service's memory limit when its config sets none.
    cpu_memory_limit: MemorySize = "8g"
    # Healthcheck timing: a busy server gets a longer interval, a slow check a longer timeout.
    health_interval_s: Annotated[int, Field(ge=1)] = 10
    health_timeout_s: Annotated[int, Field(ge=1)] = 10


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
    # Container confinement and healthcheck timing (Runtime above; toolkit/service/hardening.py).
    runtime: Runtime = Runtime()
    healthcheck: Annotated[list[str], Field(min_length=2)]
    # How `toolkit pull` fills the model cache, per source kind: the command a one-off
    # container of the config's image runs ({script}: toolkit/lifecycle/hubpull.py's text). A
    # source kind without an entry is fetched by the server itself when it starts.
    pull: dict[SourceKind, Annotated[list[str], Field(min_length=1)]] = {}
    # How `toolkit check` runs the server's own start-time checks on the config twin in a one-off
    # container of the config's image ({script}, {twin}), the server command appended; None: the
    # backend has no such check.
    check: Annotated[list[str], Field(min_length=1)] | None = None
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
