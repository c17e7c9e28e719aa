"""The catalog: one YAML file per config in configs/, loaded strictly into pydantic models.

The built-in catalog lives in the repository's configs/ folder; a user catalog (``--catalog DIR``
or ``TOOLKIT_CATALOG``) overlays it: a file with the same name replaces the built-in config, a new
name adds one. ``configs/_backends.yaml`` describes each backend, once
(toolkit/catalog/backends.py).
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from toolkit.catalog import twins
from toolkit.catalog.backends import Backend
from toolkit.catalog.names import project
from toolkit.errors import ToolkitError
from toolkit.paths import BACKENDS_FILE, CATALOG_ENV, data_root
from toolkit.protocols import Protocol

__all__ = ["Catalog", "CatalogError", "Config", "Protocol"]

# A config name is the path component of its image, `toolkit/<name>`: Docker's reference grammar
# (distribution/reference), whose whole repository name is at most 255 characters.
NAME_PATTERN = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
NAME_MAX = 255 - len("toolkit/")
# A branch or tag name as git allows it (no "..", "//", leading "-" or "/", trailing "/" or
# ".lock"), or a full commit SHA; 7 to 39 hex digits look like a shortened SHA the Hub refuses.
REVISION_PATTERN = re.compile(
    r"^(?![-/])(?!.*\.\.)(?!.*//)(?!.*\.lock$)[A-Za-z0-9._/-]*[A-Za-z0-9._-]$"
)
SHORT_SHA = re.compile(r"^[0-9a-f]{7,39}$")


_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MERGE_TAG = "tag:yaml.org,2002:merge"


class _Refused(yaml.MarkedYAMLError):
    """YAML that parses but that a catalog file may not hold; `problem` is the whole sentence."""


class _Loader(_BaseLoader):  # type: ignore[misc]
    """YAML's safe loader that refuses a key given twice, and aliases and merge keys.

    Catalog files have no use for aliases, and refusing them bounds the loader: a document of
    nested aliases ("billion laughs") is small to parse but expands without end when validated
    or printed, and merge keys copy mappings as they go. An alias shows as a node constructed
    a second time, a merge key as its tag, so both are found without expanding anything.
    """

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if node in self.constructed_objects or node in self.recursive_objects:
            line = node.start_mark.line + 1
            raise _Refused(
                problem=f"a YAML alias repeats the value at line {line}; catalog files take "
                "no aliases, so write each value out.",
                problem_mark=node.start_mark,
            )
        return super().construct_object(node, deep=deep)

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]
        mapping: dict[Any, Any] = {}
        lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == MERGE_TAG:
                raise _Refused(
                    problem=f"line {line} has a YAML merge key (<<); catalog files take no "
                    "merge keys or aliases, so write each value out.",
                    problem_mark=key_node.start_mark,
                )
            key = self.construct_object(key_node, deep=deep)
            try:
                seen = lines.get(key)
            except TypeError:
                raise _Refused(
                    problem=f"the key at line {line} is not a plain value; use a name.",
                    problem_mark=key_node.start_mark,
                ) from None
            if seen is not None:
                raise _Refused(
                    problem=f"key {key!r} at line {line} repeats the one at line {seen}; "
                    "keep one of the two.",
                    problem_mark=key_node.start_mark,
                )
            lines[key] = line
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


class CatalogError(ToolkitError):
    """A catalog file is malformed, or a config name is unknown: the user's input (exit 2)."""

    exit_code = 2


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Strict):
    """Where the weights come from: exactly one of hf, modelscope, ollama or local."""

    hf: str | None = Field(None, description="A Hugging Face Hub repo id, e.g. `org/model`.")
    revision: str | None = Field(
        None,
        description="With hf or modelscope: a branch or tag name, or a full 40-digit commit SHA "
        "(a shortened SHA is refused).",
    )
    modelscope: str | None = Field(None, description="A ModelScope repo id.")
    ollama: str | None = Field(None, description="An Ollama library tag, e.g. `llama3:8b`.")
    local: str | None = Field(
        None,
        description="A directory on the host holding the model, mounted read-only; relative "
        "paths count from the repository root. Must be readable by other users.",
    )

    @field_validator("revision")
    @classmethod
    def _revision(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if SHORT_SHA.match(value):
            raise ValueError(
                f"{value!r} looks like a shortened commit SHA; give all 40 hex digits, "
                "or a branch or tag name"
            )
        if not REVISION_PATTERN.match(value):
            raise ValueError(
                f"{value!r} is neither a branch or tag name nor a 40-digit commit SHA; "
                "use e.g. main, v1.0 or a full SHA"
            )
        return value

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
    def kind(self) -> Literal["hf", "modelscope", "ollama", "local"]:
        for kind in ("hf", "modelscope", "ollama", "local"):
            if getattr(self, kind):
                return kind
        raise AssertionError("a validated source has exactly one kind")

    @property
    def reference(self) -> str:
        """The model reference the server loads: a repo id, an Ollama tag or a container path."""
        if self.local:
            return "/models/local"
        return self.hf or self.modelscope or self.ollama or ""


# Integers and numbers as YAML writes them: `true` is not 1, nor "28" 28 (strict: a float field
# still takes an integer).
Count = Annotated[int, Field(gt=0, strict=True)]


class ModelInfo(Strict):
    """Facts of the served weights, for the VRAM plan. Those the checkpoint's config.json states
    come from its twin (`twins/<owner>--<name>.json` beside the config's file, or the shipped
    `configs/twins/`), which an `info:` value may repeat only where it agrees; the block
    holds the rest: the weights' count, width and split, or their measured size."""

    params_b: Annotated[float, Field(gt=0, strict=True)] | None = Field(
        None,
        description="Parameters, in billions (counted from the safetensors headers, or the model "
        "card); required unless weights_gib is given.",
    )
    layers: Count | None = Field(None, description="Transformer layers (`num_hidden_layers`).")
    heads: Count | None = Field(
        None,
        description="Attention heads (`num_attention_heads`); where absent, hidden / head_dim "
        "(true of most models, not of Gemma 2).",
    )
    kv_heads: Count | None = Field(
        None, description="Key/value heads (`num_key_value_heads`), for the KV cache."
    )
    head_dim: Count | None = Field(
        None, description="Dimension of one attention head (`head_dim`)."
    )
    hidden: Count | None = Field(None, description="Hidden size (`hidden_size`), for activations.")
    intermediate: Count | None = Field(
        None, description="MLP size (`intermediate_size`), for activations."
    )
    vocab: Count | None = Field(None, description="Vocabulary size (`vocab_size`), for the logits.")
    max_position: Count | None = Field(
        None, description="Longest context the model takes (`max_position_embeddings`)."
    )
    kv_lora_rank: Count | None = Field(
        None,
        description="Multi-head latent attention (DeepSeek-V2/V3/R1, Kimi-K2): the latent's "
        "width (`kv_lora_rank`); vLLM then caches one latent of kv_lora_rank + "
        "qk_rope_head_dim values per token and layer, whole on every GPU.",
    )
    qk_rope_head_dim: Count | None = Field(
        None,
        description="With kv_lora_rank: the RoPE part of each key (`qk_rope_head_dim`), cached "
        "beside the latent.",
    )
    sliding_window: Count | None = Field(
        None,
        description="Sliding-window attention: the window (`sliding_window`) of the layers "
        "sliding_layers counts; vLLM keeps only the window's KV cache for those.",
    )
    sliding_layers: Count | None = Field(
        None,
        description="With sliding_window: how many layers attend within the window "
        "(`layer_types`' sliding_attention entries; gpt-oss: 18 of 36).",
    )
    weights: Literal["bf16", "fp16", "fp8", "int4", "mxfp4", "q4"] = Field(
        "bf16", description="How the served weights are stored: bytes per parameter."
    )
    unquantized_b: Annotated[float, Field(ge=0, strict=True)] = Field(
        0.0,
        description="Quantized weights keep some parameters in 16 bits (embeddings and LM head; "
        "for Meta's FP8 405B also attention and the first and last layers' MLPs): how many, in "
        "billions.",
    )
    weights_gib: Annotated[float, Field(gt=0, strict=True)] | None = Field(
        None,
        description="The measured size of all weights in GiB, where it is known better than "
        "computed (GGUF files, a diffusers pipeline): it then replaces the computation.",
    )

    @model_validator(mode="after")
    def _sized(self) -> Self:
        if self.params_b is None and self.weights_gib is None:
            raise _FieldError(
                "info.params_b",
                "required unless weights_gib gives the weights' size; add either",
            )
        for cache, pair in (
            ("latent-attention", ("kv_lora_rank", "qk_rope_head_dim")),
            ("sliding-window", ("sliding_window", "sliding_layers")),
        ):
            given = [key for key in pair if getattr(self, key) is not None]
            if len(given) == 1:
                (missing,) = set(pair) - set(given)
                raise _FieldError(
                    f"info.{missing}",
                    f"a {cache} KV cache needs both {pair[0]} and {pair[1]}; add it from the "
                    "model's config.json",
                )
        if self.sliding_layers and self.layers and self.sliding_layers > self.layers:
            raise _FieldError(
                "info.sliding_layers",
                f"{self.sliding_layers} is more than the model's {self.layers} layers; count "
                "the sliding_attention entries of its layer_types",
            )
        return self


EngineValue = str | int | float | bool | list[str] | dict[str, int]
FlagName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


def attention_heads(info: ModelInfo) -> int | None:
    if info.heads:
        return info.heads
    if info.hidden and info.head_dim and info.hidden % info.head_dim == 0:
        return info.hidden // info.head_dim
    return None


class Config(Strict):
    """One catalog entry: everything needed to render, build, start and probe one service."""

    name: str = Field(description="The config's name: its file name without `.yaml`.")
    model: str = Field(description="The served model name clients ask for.")
    protocol: Protocol = Field(
        description="The API the service speaks; the backend must be able to serve it."
    )
    backend: str = Field(
        description="The server that runs the model: a key of `configs/_backends.yaml`."
    )
    gpus: Annotated[int, Field(ge=0, le=8, strict=True)] = Field(
        description="GPUs per node; 0 runs on the CPU (the backend's `cpu:` variant, if any)."
    )
    nodes: Annotated[int, Field(ge=1, le=64, strict=True)] = Field(
        1,
        description="Hosts the model spans (backends with `multi_node`); tensor-parallel x "
        "pipeline-parallel must equal gpus x nodes.",
    )
    replicas: Annotated[int, Field(ge=1, le=64, strict=True)] = Field(
        1,
        description="Copies of the server on one host, each on its own `gpus`, behind one "
        "endpoint (vllm-router, `cache_aware` by default); openai-text configs on one node.",
    )
    source: Source = Field(description="Where the weights come from.")
    info: ModelInfo | None = Field(
        None,
        description="The served weights' facts, for `toolkit plan`: what the config's twin "
        "(its checkpoint's config.json) cannot say, the twin giving the rest.",
    )
    gated: StrictBool = Field(
        False, description="The model needs a Hugging Face token (HF_TOKEN_FILE or HF_TOKEN)."
    )
    vision: StrictBool = Field(
        False, description="The model takes images; `toolkit probe` sends one."
    )
    engine_args: dict[FlagName, EngineValue] = Field(
        {},
        description="Server flags without their `--`, in order: true adds the bare flag, false "
        "its negation where the server has one (`--no-X`, `--disable-X`; else nothing), a list "
        "gives several values, a mapping is passed as JSON. Only for backends that take engine "
        "arguments.",
    )
    env: dict[EnvName, str] = Field(
        {}, description="Environment variables for the server, over the backend's own."
    )
    port: Annotated[int, Field(ge=1, le=65535, strict=True)] = Field(
        1042, description="The API port inside the container and, by default, on the host."
    )
    startup_seconds: Annotated[int, Field(ge=10, strict=True)] = Field(
        300,
        description="How long `toolkit start` waits for the model to be listed, and the "
        "healthcheck's start period.",
    )
    shm_size: Annotated[str, Field(pattern=r"^[0-9]+[kmg]b$")] | None = Field(
        None, description="Shared memory, e.g. `32gb`; default 16gb for more than one GPU."
    )
    memory_limit: Annotated[str, Field(pattern=r"^[0-9]+[kmg]$")] | None = Field(
        None,
        description="A CPU service's memory limit (e.g. `16g`); default: its backend's "
        "`runtime.cpu_memory_limit`.",
    )
    files: dict[str, str] = Field(
        {}, description="File names and their contents, kept with the config (`toolkit show`)."
    )
    description: str = Field(
        "", description="One line about the config, the image's OCI description."
    )

    @model_validator(mode="after")
    def _coherent(self, info: ValidationInfo) -> Self:
        backends: dict[str, Backend] = (info.context or {})["backends"]
        found = backends.get(self.backend)
        if found is None:
            raise _FieldError(
                "backend", f"unknown backend '{self.backend}'; allowed: {', '.join(backends)}"
            )
        backend = found.for_gpus(self.gpus)
        if self.protocol not in backend.protocols:
            allowed = ", ".join(backend.protocols)
            raise _FieldError(
                "protocol",
                f"backend '{self.backend}' cannot serve '{self.protocol}'; allowed: {allowed}",
            )
        kind = self.source.kind
        if kind not in backend.sources:
            raise _FieldError(
                f"source.{kind}",
                f"the {self.backend} backend does not take it; "
                f"give one of {', '.join(backend.sources)}",
            )
        if self.engine_args and not backend.engine_args:
            raise _FieldError(
                "engine_args",
                f"the {self.backend} backend takes no engine arguments; remove them",
            )
        if backend.engine_options:
            _check_engine_options(self.engine_args, engine_options(backend.engine_options))
        if self.nodes > 1 and not backend.multi_node:
            raise _FieldError(
                "nodes", f"the {self.backend} backend cannot span hosts; set nodes: 1"
            )
        single = self.why_one_replica() if self.replicas > 1 else None
        if single:
            raise _FieldError("replicas", f"{single}; set replicas: 1")
        facts = self.info
        if (
            backend.memory == "vllm"
            and facts
            and not (facts.layers and facts.kv_heads and facts.head_dim)
        ):
            raise _FieldError(
                "info",
                "vLLM's plan needs layers, kv_heads and head_dim; keep the checkpoint's "
                "config.json beside the file as twins/<owner>--<name>.json, or add them from it",
            )
        flag, stages = backend.parallel_flag, backend.pipeline_flag
        # A multi_node backend has both flags (Backend checks it), so every nodes > 1 lands here.
        if flag and stages and (self.nodes > 1 or stages in self.engine_args):
            self._check_parallelism(flag, stages)
            return self
        tp = self.engine_args.get(flag) if flag else None
        if tp is not None and tp != self.gpus:
            raise _FieldError(
                f"engine_args.{flag}",
                f"{tp} disagrees with gpus: {self.gpus}; set it to the GPU count",
            )
        return self  # absent, it is derived from gpus (toolkit/service/server.py)

    def _check_parallelism(self, tp_flag: str, pp_flag: str) -> None:
        """Across nodes (or with pipeline stages), TP x PP must use every GPU of every node."""
        sizes = []
        for flag in (tp_flag, pp_flag):
            value = self.engine_args.get(flag, 1)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise _FieldError(f"engine_args.{flag}", f"{value!r} is not a positive integer")
            sizes.append(value)
        tp, pp = sizes
        per_node = max(1, self.gpus)  # on CPU each node runs one worker
        if tp * pp != per_node * self.nodes:
            raise _FieldError(
                f"engine_args.{pp_flag}",
                f"{tp_flag} {tp} x {pp_flag} {pp} = {tp * pp} disagrees "
                f"with gpus {self.gpus} x nodes {self.nodes} = {per_node * self.nodes}; "
                "make the product the total GPU count (TP per node, PP across nodes)",
            )

    def why_one_replica(self) -> str | None:
        """Why this config runs as one replica only (toolkit/lifecycle/router.py), or None."""
        if self.protocol != Protocol.OPENAI_TEXT:
            return (
                "the replicas' router (vllm-router) routes OpenAI text requests, and "
                f"{self.name} speaks {self.protocol.value}"
            )
        if self.nodes > 1:
            return "a config that spans hosts runs as one replica"
        return None

    @property
    def total_gpus(self) -> int:
        """GPUs over all nodes: `gpus` is the count on each node."""
        return self.gpus * self.nodes

    @property
    def project(self) -> str:
        """The Compose project name: the config name with characters Compose refuses replaced."""
        return project(self.name)


class _FieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class EngineOptions:
    """A server's own command-line options, from a facts file in configs/."""

    server: str  # e.g. "vLLM 0.33.0"
    options: frozenset[str]
    no_value: frozenset[str]  # flags that take no value (store_true and the like)


@functools.cache
def engine_options(file: str) -> EngineOptions:
    """The options a facts file lists (read once per process)."""
    path = data_root() / "configs" / file
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise CatalogError(
            f"{_show(path)}: missing or not JSON; restore it from the repository."
        ) from None
    return EngineOptions(
        server=f"{data['server']} {data['version']}",
        options=frozenset(data["options"]),
        no_value=frozenset(data["no_value_options"]),
    )


def _check_engine_options(engine_args: Mapping[str, EngineValue], known: EngineOptions) -> None:
    for flag, value in engine_args.items():
        if flag not in known.options:
            close = difflib.get_close_matches(flag, sorted(known.options), n=3, cutoff=0.6)
            hint = f"did you mean {' or '.join(close)}?" if close else "remove it."
            raise _FieldError(
                f"engine_args.{flag}", f"{known.server} has no option --{flag}; {hint}"
            )
        if flag in known.no_value and not isinstance(value, bool):
            raise _FieldError(
                f"engine_args.{flag}",
                f"--{flag} takes no value in {known.server}; write true to pass it, got {value!r}",
            )


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except _Refused as exc:
        raise CatalogError(f"{_show(path)}: {exc.problem}") from None
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


def _explain(
    path: Path, exc: ValidationError, model: type[BaseModel], prefix: str = ""
) -> CatalogError:
    """Every validation error of one file, each as "field: what is wrong and what is allowed"."""
    problems = [_describe(err, model, prefix) for err in exc.errors()]
    if len(problems) == 1:
        end = "" if problems[0].endswith("?") else "."
        return CatalogError(f"{_show(path)}: {problems[0]}{end}")
    listing = "\n".join(f"    {problem}" for problem in problems)
    return CatalogError(f"{_show(path)}: {len(problems)} problems; fix each:\n{listing}")


def _describe(err: ErrorDetails, model: type[BaseModel], prefix: str) -> str:
    parts = [str(p) for p in err["loc"]]
    if len(parts) >= 2 and parts[-1] == "[key]":
        parent = prefix + ".".join(parts[:-2])
        return f"field '{parent}': key {parts[-2]!r} is not allowed ({err['msg']})"
    loc = prefix + ".".join(parts)
    ctx = err.get("ctx") or {}
    cause = ctx.get("error")
    if isinstance(cause, _FieldError):
        return f"field '{prefix}{cause.field}': {cause}"
    kind = err["type"]
    if kind == "extra_forbidden":
        owner = _model_at(model, err["loc"][:-1])
        allowed = ", ".join(f for f in owner.model_fields if f != "name") if owner else ""
        return f"unknown key '{loc}'; allowed keys: {allowed}"
    if kind == "missing":
        return f"field '{loc}' is required; add it"
    message = str(cause) if cause else err["msg"]
    where = f"field '{loc}'" if loc else "file"
    got = f", got {err['input']!r}" if parts and kind != "value_error" else ""
    return f"{where}: {message}{got}"


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


def _config_files(directory: Path, user: bool) -> Iterator[tuple[Path, CatalogError | None]]:
    """Each config file (.yaml or .yml), and in a user catalog each YAML file that is not one,
    with the sentence saying why it is not loaded (the built-in catalog's _backends.yaml is
    not a config)."""
    for path in sorted(directory.iterdir()):
        suffix = path.suffix
        if suffix.lower() not in (".yaml", ".yml"):
            continue
        if suffix in (".yaml", ".yml") and not path.name.startswith("_"):
            yield path, None
            continue
        if not user:
            continue
        if path.name.startswith("_"):
            why = "a file name starting with '_' is not a config; rename the file to load it."
        else:
            why = (
                "only the lower-case suffixes .yaml and .yml mark a config; "
                f"rename it to {path.stem}.yaml to load it."
            )
        yield path, CatalogError(f"{_show(path)}: not loaded, since {why}")


class Catalog(Mapping[str, Config]):
    """All configs by name, the user catalog laid over the built-in one.

    A broken config file does not hide the others: its error is kept, raised when that config is
    asked for, and raised with every other one by `check()` for commands that need them all.
    """

    def __init__(
        self,
        configs: dict[str, Config],
        backends: dict[str, Backend],
        sources: dict[str, Path],
        errors: dict[str, CatalogError] | None = None,
    ) -> None:
        self._configs = dict(sorted(configs.items()))
        self.backends = backends
        self.sources = sources
        self.errors = dict(sorted((errors or {}).items()))

    @classmethod
    def load(cls, user_dir: str | Path | None = None) -> Catalog:
        """The built-in catalog, with the user's directory (if any) laid over it."""
        builtin = data_root() / "configs"
        dirs = [builtin]
        if user_dir:
            user_path = Path(user_dir)
            if not user_path.is_dir():
                what = "is a file, not a directory" if user_path.exists() else "does not exist"
                raise CatalogError(
                    f"catalog directory {user_path} {what}; "
                    f"point --catalog / {CATALOG_ENV} at a directory of config files."
                )
            dirs.append(user_path)
        backends = _load_backends(builtin / BACKENDS_FILE)
        configs: dict[str, Config] = {}
        sources: dict[str, Path] = {}
        errors: dict[str, CatalogError] = {}
        for directory in dirs:
            seen: dict[str, Path] = {}
            for path, skipped in _config_files(directory, user=directory is not builtin):
                if skipped:
                    errors[path.name] = skipped
                    continue
                name = path.stem
                if name in seen:
                    raise CatalogError(
                        f"{_show(path)}: duplicate config name '{name}' "
                        f"(also {_show(seen[name])}); keep one of the two files."
                    )
                seen[name] = path
                sources[name] = path
                configs.pop(name, None)
                errors.pop(name, None)
                try:
                    configs[name] = load_config(path, backends)
                except CatalogError as exc:
                    errors[name] = exc
        _shared_projects(sources, errors)
        return cls({n: c for n, c in configs.items() if n not in errors}, backends, sources, errors)

    def check(self) -> None:
        """Raise every config file's error at once, for commands that need the whole catalog."""
        if len(self.errors) == 1:
            raise next(iter(self.errors.values()))
        if self.errors:
            raise CatalogError(
                f"{len(self.errors)} config files have errors; fix each:\n"
                + "\n".join(f"  {exc}" for exc in self.errors.values())
            )

    def __getitem__(self, name: str) -> Config:
        try:
            return self._configs[name]
        except KeyError:
            if name in self.errors:
                raise self.errors[name] from None
            known = [*self._configs, *self.errors]
            raise CatalogError(unknown_name_message(name, known)) from None

    def __contains__(self, name: object) -> bool:
        # Mapping's own `in` calls __getitem__, which raises CatalogError, not KeyError.
        return name in self._configs

    def __iter__(self) -> Iterator[str]:
        return iter(self._configs)

    def __len__(self) -> int:
        return len(self._configs)

    def backend(self, config: Config) -> Backend:
        return self.backends[config.backend].for_gpus(config.gpus)

    def twin(self, config: Config) -> Path | None:
        """The config's twin, beside its file or else shipped (toolkit/catalog/twins.py), if any."""
        return twins.twin_path(self.sources[config.name].parent, config.source.model_dump())


def unknown_name_message(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    return f"unknown config '{name}'; {hint}Run 'toolkit list' to see every config."


def load_config(path: Path, backends: dict[str, Backend]) -> Config:
    """Load and validate one config file; the config's name is the file's stem."""
    name = path.stem
    _check_name(path, name)
    try:
        data = _read_yaml(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise _unreadable(path, exc) from None
    if not isinstance(data, dict):
        raise CatalogError(f"{_show(path)}: expected a mapping of fields at the top level.")
    if "name" in data:
        raise CatalogError(
            f"{_show(path)}: unknown key 'name'; the config name is the file name ({name})."
        )
    twin = twins.twin_path(path.parent, data.get("source"))
    if twin is not None and isinstance(data.get("info"), dict):
        data = {**data, "info": _with_twin(path, data["info"], twin)}
    try:
        return Config.model_validate({"name": name, **data}, context={"backends": backends})
    except ValidationError as exc:
        raise _explain(path, exc, Config) from None


def _with_twin(path: Path, info: dict[str, Any], twin: Path) -> dict[str, Any]:
    """The info: block completed with the twin's facts: the twin is the checkpoint's own word,
    so an info: value that says otherwise is refused rather than either one chosen."""
    try:
        said = twins.facts(twins.read(twin))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CatalogError(
            f"{_show(path)}: its twin {_show(twin)} is not a readable JSON object ({exc}); "
            "replace it with the checkpoint's published config.json."
        ) from None
    for key, value in said.items():
        if key in info and info[key] != value:
            raise CatalogError(
                f"{_show(path)}: info.{key} is {info[key]!r} but its twin {_show(twin)} says "
                f"{value!r}; remove info.{key}, since the twin's value is the checkpoint's."
            )
    return {**info, **said}


def _check_name(path: Path, name: str) -> None:
    """The name becomes the image `toolkit/<name>`: refuse what Docker cannot tag."""
    if not NAME_PATTERN.match(name):
        raise CatalogError(
            f"{_show(path)}: config name '{name}' cannot name a Docker image; use lower-case "
            "letters and digits, separated by one '.', one or two '_' or any number of '-'."
        )
    if len(name) > NAME_MAX:
        raise CatalogError(
            f"{_show(path)}: config name has {len(name)} characters; shorten it to at most "
            f"{NAME_MAX}, as the image name toolkit/NAME may have at most 255."
        )


def _unreadable(path: Path, exc: OSError | UnicodeDecodeError) -> CatalogError:
    """One sentence for a catalog entry that is not a readable UTF-8 file."""
    if isinstance(exc, UnicodeDecodeError):
        return CatalogError(
            f"{_show(path)}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}); save the file as UTF-8."
        )
    if path.is_dir():
        return CatalogError(
            f"{_show(path)}: a directory, not a config file; rename it or move it out of the "
            "catalog."
        )
    if path.is_symlink() and not path.exists():
        return CatalogError(
            f"{_show(path)}: a symbolic link to {path.readlink()}, which does not exist; "
            "fix the link or remove it."
        )
    return CatalogError(
        f"{_show(path)}: cannot be read ({exc.strerror or type(exc).__name__}); make it "
        "readable or remove it."
    )


def _shared_projects(sources: dict[str, Path], errors: dict[str, CatalogError]) -> None:
    """Two names that make one Compose project (`a.b` and `a-b`) would replace each other's
    container: each file's error names the other, and neither config loads."""
    by_project: dict[str, list[str]] = {}
    for name in filter(NAME_PATTERN.match, sources):  # a name refused as such shares nothing
        by_project.setdefault(project(name), []).append(name)
    for shared, names in by_project.items():
        for name in names if len(names) > 1 else []:
            others = " and ".join(_show(sources[n]) for n in names if n != name)
            errors.setdefault(
                name,
                CatalogError(
                    f"{_show(sources[name])}: makes the Compose project '{shared}', as {others} "
                    "does, so starting one would replace the other; rename one of the files."
                ),
            )


def _load_backends(path: Path) -> dict[str, Backend]:
    data = _read_yaml(path)
    if not isinstance(data, dict) or not data:
        raise CatalogError(f"{_show(path)}: expected a mapping of backend names.")
    backends: dict[str, Backend] = {}
    for key, value in data.items():
        if not isinstance(value, dict):
            raise CatalogError(f"{_show(path)}: backend '{key}' must be a mapping of fields.")
        try:
            cpu = value.get("cpu")
            if isinstance(cpu, dict):  # the CPU variant: the entry with its cpu: fields over it
                value = {**value, "cpu": {**value, **cpu, "name": key, "cpu": None}}
            backends[key] = Backend.model_validate({"name": key, **value})
        except ValidationError as exc:
            raise _explain(path, exc, Backend, prefix=f"{key}.") from None
    return backends
