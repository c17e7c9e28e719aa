"""The catalog: one YAML file per config in configs/, loaded strictly into pydantic models.

The built-in catalog lives in the repository's configs/ folder; a user catalog (``--catalog DIR``
or ``TOOLKIT_CATALOG``) overlays it: a file with the same name replaces the built-in config, a new
name adds one. ``configs/_backends.yaml`` pins each backend's base image and version, once.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from toolkit.errors import ToolkitError
from toolkit.paths import BACKENDS_FILE, BUILTIN_CATALOG, CATALOG_ENV, REPO_ROOT

__all__ = ["BUILTIN_CATALOG", "CATALOG_ENV", "REPO_ROOT", "Catalog", "CatalogError", "Config"]

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CatalogError(ToolkitError):
    """A catalog file is malformed, or a config name is unknown."""


class Protocol(StrEnum):
    OPENAI_TEXT = "openai-text"
    OLLAMA_TEXT = "ollama-text"
    OPENAI_IMAGE = "openai-image"


class BackendName(StrEnum):
    VLLM = "vllm"
    OLLAMA = "ollama"
    DIFFUSERS = "diffusers"
    TRANSFORMERS = "transformers"


PROTOCOLS: dict[BackendName, Protocol] = {
    BackendName.VLLM: Protocol.OPENAI_TEXT,
    BackendName.OLLAMA: Protocol.OLLAMA_TEXT,
    BackendName.DIFFUSERS: Protocol.OPENAI_IMAGE,
    BackendName.TRANSFORMERS: Protocol.OPENAI_TEXT,
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Strict):
    """Where the weights come from: exactly one of hf, modelscope, ollama or local."""

    hf: str | None = None
    revision: str | None = None
    modelscope: str | None = None
    ollama: str | None = None
    local: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [k for k in ("hf", "modelscope", "ollama", "local") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of hf, modelscope, ollama or local"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.revision and not (self.hf or self.modelscope):
            raise ValueError("revision goes only with hf or modelscope")
        return self

    @property
    def reference(self) -> str:
        """The model reference the server loads: a repo id, an Ollama tag or a container path."""
        if self.local:
            return "/models/local"
        return self.hf or self.modelscope or self.ollama or ""


class ModelInfo(Strict):
    """Facts from the served weights' config.json and model card, for the VRAM plan."""

    params_b: Annotated[float, Field(gt=0)]
    layers: Annotated[int, Field(gt=0)] | None = None
    kv_heads: Annotated[int, Field(gt=0)] | None = None
    head_dim: Annotated[int, Field(gt=0)] | None = None
    hidden: Annotated[int, Field(gt=0)] | None = None
    intermediate: Annotated[int, Field(gt=0)] | None = None
    vocab: Annotated[int, Field(gt=0)] | None = None
    max_position: Annotated[int, Field(gt=0)] | None = None
    weights: Literal["bf16", "fp16", "fp8", "int4", "q4"] = "bf16"
    # Quantized weights keep some parameters in 16 bits (embeddings and LM head; for Meta's
    # FP8 405B also attention and the first and last layers' MLPs): how many, in billions.
    unquantized_b: Annotated[float, Field(ge=0)] = 0.0
    # The measured size of all weights, where it is known better than computed (GGUF files,
    # a diffusers pipeline): it then replaces the computation.
    weights_gib: Annotated[float, Field(gt=0)] | None = None


EngineValue = str | int | float | bool | list[str] | dict[str, int]
FlagName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class Config(Strict):
    """One catalog entry: everything needed to render, build, start and probe one service."""

    name: str
    model: str
    protocol: Protocol
    backend: BackendName
    gpus: Annotated[int, Field(ge=0, le=8)]
    source: Source
    info: ModelInfo | None = None
    gated: bool = False
    vision: bool = False
    engine_args: dict[FlagName, EngineValue] = {}
    env: dict[EnvName, str] = {}
    port: Annotated[int, Field(ge=1, le=65535)] = 1042
    startup_seconds: Annotated[int, Field(ge=10)] = 300
    shm_size: Annotated[str, Field(pattern=r"^[0-9]+[kmg]b$")] | None = None
    files: dict[str, str] = {}
    description: str = ""

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        allowed = PROTOCOLS[self.backend]
        if self.protocol != allowed:
            raise _FieldError(
                "protocol",
                f"backend '{self.backend}' cannot serve '{self.protocol}'; allowed: {allowed}",
            )
        tp = self.engine_args.get("tensor-parallel-size")
        if tp is not None and tp != self.gpus:
            raise _FieldError(
                "engine_args.tensor-parallel-size",
                f"{tp} disagrees with gpus: {self.gpus}; set it to the GPU count",
            )
        if self.backend == BackendName.VLLM and self.gpus > 1 and tp is None:
            raise _FieldError(
                "engine_args.tensor-parallel-size",
                f"missing for a {self.gpus}-GPU vLLM config; set it to {self.gpus}",
            )
        if self.source.ollama and self.backend != BackendName.OLLAMA:
            raise _FieldError(
                "source.ollama", f"only the ollama backend takes it, not {self.backend}"
            )
        if self.backend == BackendName.OLLAMA and not (self.source.ollama or self.source.local):
            raise _FieldError("source", "the ollama backend needs source.ollama or source.local")
        if self.backend == BackendName.TRANSFORMERS and not self.source.local:
            raise _FieldError("source", "the transformers backend serves a local directory only")
        return self

    @property
    def project(self) -> str:
        """The Compose project name: the config name with characters Compose refuses replaced."""
        return "toolkit-" + self.name.replace(".", "-")


class Backend(Strict):
    """Pinned base image and packages of one backend (configs/_backends.yaml)."""

    name: BackendName
    base: Annotated[str, Field(pattern=r"^[a-z0-9./_-]+:[A-Za-z0-9._-]+$")]
    container_port: Annotated[int, Field(ge=1, le=65535)]
    packages: dict[str, str] = {}
    # A lock file in the image's build context, installed with --no-deps beside the packages.
    requirements: str | None = None
    # Debian packages the Python image installs first (shared libraries its wheels load).
    system_packages: list[str] = []
    # The image's entrypoint, where the template takes it from the data.
    entrypoint: list[str] = []
    # The pins a CPU-only config (gpus: 0) gets instead, rendered from the same templates.
    cpu: Backend | None = None

    @property
    def version(self) -> str:
        """The backend's version, the default image tag: its package's, else the base's tag."""
        for package, version in self.packages.items():
            if package.split("[")[0] in (self.name.value, f"{self.name.value}-cpu"):
                return version
        return self.base.rsplit(":", 1)[1]


class _FieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise CatalogError(
            f"{_show(path)}: not valid YAML{where} ({exc.problem}); fix the syntax there."
        ) from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"{_show(path)}: not valid YAML ({exc}); fix the syntax.") from None


def _show(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _explain(path: Path, exc: ValidationError, model: type[BaseModel]) -> CatalogError:
    err = exc.errors()[0]
    parts = [str(p) for p in err["loc"]]
    if len(parts) >= 2 and parts[-1] == "[key]":
        parent = ".".join(parts[:-2])
        return CatalogError(
            f"{_show(path)}: field '{parent}': key {parts[-2]!r} is not allowed ({err['msg']})."
        )
    loc = ".".join(parts)
    ctx = err.get("ctx") or {}
    cause = ctx.get("error")
    if isinstance(cause, _FieldError):
        return CatalogError(f"{_show(path)}: field '{cause.field}': {cause}.")
    kind = err["type"]
    if kind == "extra_forbidden":
        owner = _model_at(model, err["loc"][:-1])
        allowed = ", ".join(f for f in owner.model_fields if f != "name") if owner else ""
        return CatalogError(f"{_show(path)}: unknown key '{loc}'; allowed keys: {allowed}.")
    if kind == "missing":
        return CatalogError(f"{_show(path)}: field '{loc}' is required; add it.")
    message = str(cause) if cause else err["msg"]
    where = f"field '{loc}'" if loc else "file"
    got = f", got {err['input']!r}" if loc and kind != "value_error" else ""
    return CatalogError(f"{_show(path)}: {where}: {message}{got}.")


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        ann = field.annotation
        candidates = [ann, *getattr(ann, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return model


def _config_files(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.iterdir()):
        if path.suffix in (".yaml", ".yml") and not path.name.startswith("_"):
            yield path


class Catalog(Mapping[str, Config]):
    """All configs by name, the user catalog laid over the built-in one."""

    def __init__(
        self,
        configs: dict[str, Config],
        backends: dict[BackendName, Backend],
        sources: dict[str, Path],
    ) -> None:
        self._configs = dict(sorted(configs.items()))
        self.backends = backends
        self.sources = sources

    @classmethod
    def load(cls, user_dir: str | Path | None = None) -> Catalog:
        user = user_dir if user_dir is not None else os.environ.get(CATALOG_ENV) or None
        dirs = [BUILTIN_CATALOG]
        if user:
            user_path = Path(user)
            if not user_path.is_dir():
                raise CatalogError(
                    f"catalog directory {user_path} does not exist; "
                    f"create it or fix --catalog / {CATALOG_ENV}."
                )
            dirs.append(user_path)
        backends = _load_backends(BUILTIN_CATALOG / BACKENDS_FILE)
        configs: dict[str, Config] = {}
        sources: dict[str, Path] = {}
        for directory in dirs:
            seen: dict[str, Path] = {}
            for path in _config_files(directory):
                name = path.stem
                if name in seen:
                    raise CatalogError(
                        f"{_show(path)}: duplicate config name '{name}' "
                        f"(also {_show(seen[name])}); keep one of the two files."
                    )
                seen[name] = path
                configs[name] = load_config(path)
                sources[name] = path
        return cls(configs, backends, sources)

    def __getitem__(self, name: str) -> Config:
        try:
            return self._configs[name]
        except KeyError:
            raise CatalogError(unknown_name_message(name, list(self._configs))) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._configs)

    def __len__(self) -> int:
        return len(self._configs)

    def backend(self, config: Config) -> Backend:
        backend = self.backends[config.backend]
        if config.gpus == 0 and backend.cpu is not None:
            return backend.cpu
        return backend


def unknown_name_message(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    return f"unknown config '{name}'; {hint}Run 'toolkit list' to see every config."


def load_config(path: Path) -> Config:
    """Load and validate one config file; the config's name is the file's stem."""
    name = path.stem
    if not NAME_PATTERN.match(name):
        raise CatalogError(
            f"{_show(path)}: config name '{name}' is not allowed; use lower-case letters, "
            "digits, '.', '_' and '-', starting with a letter or digit."
        )
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise CatalogError(f"{_show(path)}: expected a mapping of fields at the top level.")
    if "name" in data:
        raise CatalogError(
            f"{_show(path)}: unknown key 'name'; the config name is the file name ({name})."
        )
    try:
        return Config.model_validate({"name": name, **data})
    except ValidationError as exc:
        raise _explain(path, exc, Config) from None


def _load_backends(path: Path) -> dict[BackendName, Backend]:
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise CatalogError(f"{_show(path)}: expected a mapping of backend names.")
    backends: dict[BackendName, Backend] = {}
    for key, value in data.items():
        if key not in set(BackendName):
            allowed = ", ".join(BackendName)
            raise CatalogError(f"{_show(path)}: unknown backend '{key}'; allowed: {allowed}.")
        try:
            cpu = value.get("cpu") if isinstance(value, dict) else None
            if isinstance(cpu, dict):
                value = {**value, "cpu": {"name": key, **cpu}}
            backends[BackendName(key)] = Backend.model_validate({"name": key, **value})
        except ValidationError as exc:
            raise _explain(path, exc, Backend) from None
    missing = set(BackendName) - set(backends)
    if missing:
        raise CatalogError(f"{_show(path)}: backends missing: {', '.join(sorted(missing))}.")
    return backends
