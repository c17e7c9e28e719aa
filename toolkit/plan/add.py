"""`toolkit add SOURCE`: a model the user brings becomes one commented, checked config file.

Every fact comes from the checkpoint (toolkit/plan/facts.py, toolkit/plan/hub.py), the GPU count
and the context from the plan (toolkit/plan/memory.py), the backend from the pinned vLLM's list
of architectures (toolkit/plan/architectures.py). The file is validated by the catalog's own
strict loader before it is put in place, and an existing file is replaced only when asked.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.catalog import twins
from toolkit.catalog.configs import NAME_PATTERN, Catalog, Config, load_config
from toolkit.errors import ToolkitError, UsageError
from toolkit.plan import memory
from toolkit.plan.architectures import supported
from toolkit.plan.facts import Checkpoint, local_checkpoint

HF_REPO = re.compile(r"^([A-Za-z0-9][\w.-]*)/([\w.-]+)(?:@([\w./-]+))?$")
OLLAMA_TAG = re.compile(r"^ollama:([a-z0-9][\w.-]*(?:/[\w.-]+)?)(?::([\w.-]+))?$")
MOST_GPUS = 8
CONTEXT_STEP = 1024  # a capped context is rounded down to whole thousands of tokens
# Parsers vLLM documents per family (docs/features/reasoning_outputs.md and tool_calling.md of
# vLLM; the names are keys of vllm/reasoning/__init__.py and vllm/tool_parsers/__init__.py).
REASONING = {"qwen3": "qwen3", "qwen3_moe": "qwen3"}
HERMES_TOOLS = ("qwen2", "qwen3", "qwen3_moe")
INFO_ORDER = (
    "params_b",
    "layers",
    "heads",
    "kv_heads",
    "head_dim",
    "kv_lora_rank",
    "qk_rope_head_dim",
    "sliding_window",
    "sliding_layers",
    "hidden",
    "intermediate",
    "vocab",
    "max_position",
    "weights",
    "unquantized_b",
    "weights_gib",
)


@dataclass(frozen=True)
class Source:
    kind: str  # hf, local or ollama
    reference: str  # repo id, absolute folder, or Ollama tag
    revision: str | None = None

    @property
    def title(self) -> str:
        """The served model name: the repo's or folder's last part, or the Ollama tag."""
        return self.reference.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class Added:
    name: str
    path: Path
    text: str
    plan: memory.Plan | None
    notes: list[str] = field(default_factory=list)


def parse_source(text: str) -> Source:
    """A local folder, `ollama:NAME[:TAG]`, or a Hugging Face repo `org/name[@revision]`."""
    path = Path(text).expanduser()
    if path.is_dir():
        return Source("local", str(path.resolve()))
    if text.startswith("ollama:"):
        match = OLLAMA_TAG.match(text)
        if not match:
            raise UsageError(
                f"'{text}' is not an Ollama tag; write it as ollama:NAME:TAG, e.g. "
                "ollama:llama3.2:3b."
            )
        return Source("ollama", f"{match.group(1)}:{match.group(2) or 'latest'}")
    match = HF_REPO.match(text)
    if not match or text.startswith((".", "/", "~")):
        raise UsageError(
            f"'{text}' is neither a model folder, a Hugging Face repo (org/name[@revision]) "
            "nor an Ollama tag (ollama:NAME:TAG); give one of those."
        )
    return Source("hf", f"{match.group(1)}/{match.group(2)}", match.group(3))


def default_name(source: Source, gpus: int) -> str:
    """The config name: the model's name in lower case, `_N` for N GPUs as the catalog writes it."""
    base = re.sub(r"[^a-z0-9._-]+", "-", source.title.lower().replace(":", "-")).strip("-._")
    return f"{base}_{gpus}" if gpus > 1 else base


def add(
    catalog: Catalog,
    directory: Path,
    source: Source,
    checkpoint: Checkpoint | None,
    *,
    gated: bool = False,
    name: str | None = None,
    gpu_memory: float = memory.DEFAULT_GPU_GIB,
    gpu_count: int | None = None,
    context: int | None = None,
    backend: str | None = None,
    force: bool = False,
) -> Added:
    """Choose backend, GPUs and context; write DIRECTORY/NAME.yaml (checked by the loader)."""
    if source.kind == "local" and checkpoint is None:
        checkpoint = local_checkpoint(Path(source.reference))
    notes: list[str] = []
    backend = backend or _backend(source, checkpoint)
    if backend not in catalog.backends:
        raise UsageError(
            f"unknown backend '{backend}'; choose one of {', '.join(catalog.backends)}."
        )
    if checkpoint is not None and backend == "vllm":
        gpus, context, result = _fit(catalog, source, checkpoint, gpu_memory, gpu_count, context)
        if context < (checkpoint.info.max_position or context):
            notes.append(
                f"context capped at {context} tokens (the model takes "
                f"{checkpoint.info.max_position}): the KV cache left on {gpus} GPU(s) of "
                f"{gpu_memory:.1f} GiB holds no more; add GPUs with --gpu-count for more."
            )
    else:
        gpus, result = (1 if gpu_count is None else gpu_count), None
        if checkpoint is None:
            notes.append(
                "an Ollama tag carries no checkpoint facts here, so nothing was planned; "
                "add an info: block to plan it."
            )
    name = name or default_name(source, gpus)
    if not NAME_PATTERN.match(name):
        raise UsageError(
            f"--name '{name}' is not a config name; use lower-case letters, digits, '.', '_' "
            "and '-', starting with a letter or digit."
        )
    path = directory / f"{name}.yaml"
    if not force and path.exists():
        raise UsageError(f"{path} exists; pass --force to replace it, or choose --name.")
    if not force and name in catalog and catalog.sources[name].parent != directory:
        raise UsageError(
            f"'{name}' is a built-in config that this file would replace; pass --force to "
            "replace it, or choose --name."
        )
    planned = result is not None
    text = render(name, source, checkpoint, backend, gpus, context, gated, catalog, planned)
    twin = None
    if checkpoint is not None:  # the config's shape facts: its info: block holds the rest
        published = {"_source": _address(source), **checkpoint.config}
        twin = (f"{_twin_name(source)}.json", json.dumps(published, indent=2) + "\n")
    _write_checked(path, text, catalog, twin)
    if checkpoint is not None:  # the plan of the file as written, for any backend
        result = memory.plan(
            catalog_config(path, catalog),
            catalog.backends[backend].for_gpus(gpus),
            gpus,
            gpu_memory,
            None,
            None,
        )
    return Added(name, path, text, result, notes)


def _twin_name(source: Source) -> str:
    """twins/<owner>--<name>.json as configs/twins/ names them; a folder by its own name."""
    return source.reference.replace("/", "--") if source.kind == "hf" else source.title


def _address(source: Source) -> str:
    if source.kind == "hf":
        return f"{source.reference}@{source.revision or 'main'}:config.json"
    return f"{source.reference}/config.json"


def catalog_config(path: Path, catalog: Catalog) -> Config:
    return load_config(path, catalog.backends)


def _backend(source: Source, checkpoint: Checkpoint | None) -> str:
    if source.kind == "ollama":
        return "ollama"
    assert checkpoint is not None
    vllm = supported()
    if vllm.serves(checkpoint.architecture):
        return "vllm"
    what = checkpoint.architecture or "a config.json without architectures"
    other = ", or add the folder with --backend transformers" if source.kind == "local" else ""
    raise UsageError(
        f"vLLM {vllm.vllm} cannot serve {what} (configs/vllm-facts.json); add a "
        f"checkpoint of an architecture it lists{other}."
    )


def _fit(
    catalog: Catalog,
    source: Source,
    checkpoint: Checkpoint,
    gpu_memory: float,
    gpu_count: int | None,
    context: int | None,
) -> tuple[int, int, memory.Plan]:
    """The smallest GPU count that holds the context (the model's own unless asked), else the
    smallest that holds the weights, with the context capped to what its KV cache holds."""
    info = checkpoint.info
    longest = info.max_position
    if context and longest and context > longest:
        raise UsageError(
            f"--context {context} is more than the model's {longest} tokens; "
            f"ask for at most {longest}."
        )
    want = context or longest or 4096
    if gpu_count is not None:
        problem = memory.parallel_problem(info, gpu_count) if gpu_count else None
        if problem:
            raise UsageError(f"--gpu-count {gpu_count}: vLLM refuses it, {problem}.")
        counts = [gpu_count]
    else:
        counts = [n for n in range(1, MOST_GPUS + 1) if memory.parallel_problem(info, n) is None]
    plans = [(n, _plan(catalog, source, checkpoint, n, want, gpu_memory)) for n in counts]
    for n, result in plans:
        if result.fits:
            return n, want, result
    if context is None:  # the model's own context is a default: cap it where the KV cache ends
        for n, result in plans:
            capped = result.max_context_tokens // CONTEXT_STEP * CONTEXT_STEP
            kv_cache = result.per_gpu.kv_cache_gib  # None where the KV shape is unknown
            if kv_cache is not None and kv_cache > 0 and capped >= CONTEXT_STEP:
                return n, capped, _plan(catalog, source, checkpoint, n, capped, gpu_memory)
    n, result = plans[0] if gpu_count is not None else plans[-1]
    raise ToolkitError(
        f"{source.title} does not fit {n} GPU(s) of {gpu_memory:.1f} GiB: "
        f"{'; '.join(result.reasons)}. {result.advice}"
    )


def _plan(
    catalog: Catalog,
    source: Source,
    checkpoint: Checkpoint,
    gpus: int,
    context: int,
    gpu_memory: float,
) -> memory.Plan:
    args: dict[str, int] = {"max-model-len": context}
    if gpus > 1:
        args["tensor-parallel-size"] = gpus
    config = Config.model_validate(
        {
            "name": default_name(source, gpus),
            "model": source.title,
            "protocol": "openai-text",
            "backend": "vllm",
            "gpus": gpus,
            "source": {"hf": source.reference} if source.kind == "hf" else {"local": "/x"},
            "info": checkpoint.info.model_dump(exclude_none=True),
            "engine_args": args,
        },
        context={"backends": catalog.backends},
    )
    backend = catalog.backends["vllm"].for_gpus(gpus)
    return memory.plan(config, backend, gpus, gpu_memory, context, checkpoint.info)


def render(
    name: str,
    source: Source,
    checkpoint: Checkpoint | None,
    backend: str,
    gpus: int,
    context: int | None,
    gated: bool,
    catalog: Catalog,
    planned: bool,
) -> str:
    """The config file, every choice commented with where it came from."""
    protocol = catalog.backends[backend].for_gpus(gpus).protocols[0]
    where = {"hf": "Hugging Face repo", "local": "local folder", "ollama": "Ollama tag"}
    lines = [
        f"# Written by `toolkit add` from the {where[source.kind]} {source.reference}"
        + (f"@{source.revision}" if source.revision else "")
        + "; edit freely.",
        f"description: {_quote(_description(source, checkpoint, backend, gpus))}",
        f"model: {_quote(source.title)}  # the served name clients send",
        f"protocol: {protocol}",
    ]
    if checkpoint is not None and backend == "vllm":
        lines.append(
            f"backend: {backend}  # vLLM {supported().vllm} lists {checkpoint.architecture}"
        )
    else:
        lines.append(f"backend: {backend}")
    lines.append(
        f"gpus: {gpus}" + ("  # the fewest the plan fits the context on" if planned else "")
    )
    if gated:
        lines.append("gated: true  # the Hub's model info: a token is needed to download it")
    if checkpoint is not None and checkpoint.vision:
        lines.append("vision: true  # config.json has a vision_config")
    lines.append("source:")
    if source.kind == "hf":
        lines += [f"  hf: {source.reference}", f"  revision: {_quote(source.revision or 'main')}"]
    else:
        lines.append(f"  {source.kind}: {_quote(source.reference)}")
    if checkpoint is not None:
        lines += _info_lines(checkpoint)
        lines[1:1] = [
            f"# Its config.json is kept beside this file: twins/{_twin_name(source)}.json, which",
            f"# gives the plan {_shape(checkpoint)}.",
        ]
    args = _engine_lines(source, checkpoint, backend, gpus, context)
    if args:
        lines += ["engine_args:", *args]
    weights = memory.weights_gib(checkpoint.info) if checkpoint else 0.0
    startup = min(3600, 300 + 10 * int(weights))
    lines.append(f"startup_seconds: {startup}  # 300 s and 10 s per GiB of weights")
    return "\n".join(lines) + "\n"


def _description(source: Source, checkpoint: Checkpoint | None, backend: str, gpus: int) -> str:
    on = f"on {gpus} GPU(s)" if gpus else "on the CPU"
    quant = f" ({checkpoint.quantization})" if checkpoint and checkpoint.quantization else ""
    return f"{source.title}{quant} with {backend} {on}, added by toolkit add."


def _info_lines(checkpoint: Checkpoint) -> list[str]:
    """What the twin (config.json) cannot say: the weights' count, width and split."""
    info = checkpoint.info
    how = "the safetensors headers" if checkpoint.counted else "config.json's shapes (estimated)"
    lines = [f"info:  # beside its twin's shape, for `toolkit plan`: parameters from {how}"]
    facts = info.model_dump(exclude_none=True, exclude_defaults=True)
    facts.setdefault("weights", info.weights)
    for said in twins.facts(checkpoint.config):
        facts.pop(said, None)
    for key in INFO_ORDER:
        if key in facts:
            value = facts[key]
            shown = f"{value:.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else value
            lines.append(f"  {key}: {shown}{_fact_comment(key, checkpoint)}")
    return lines


def _shape(checkpoint: Checkpoint) -> str:
    """What the twin tells the plan, in words: the KV cache's shape and the context."""
    info = checkpoint.info
    if info.kv_lora_rank:
        cache = f"a latent of {info.kv_lora_rank} + {info.qk_rope_head_dim} per token and layer"
    else:
        cache = f"{info.kv_heads} KV heads of {info.head_dim}"
    window = (
        f", {info.sliding_layers} of them within a {info.sliding_window}-token window"
        if info.sliding_window
        else ""
    )
    rope = f" with its {checkpoint.rope} RoPE scaling" if checkpoint.rope else ""
    return f"{info.layers} layers{window}, {cache}, {info.max_position} tokens{rope}"


def _fact_comment(key: str, checkpoint: Checkpoint) -> str:
    if key == "params_b" and checkpoint.experts:
        return (
            f"  # every one of {checkpoint.experts} experts is resident "
            f"({checkpoint.experts_per_token} active per token)"
        )
    if key == "params_b" and checkpoint.params_by_dtype:
        dtypes = ", ".join(f"{d} {n / 1e9:.3g}B" for d, n in checkpoint.params_by_dtype.items())
        return f"  # tensor elements by dtype: {dtypes}"
    if key == "weights" and checkpoint.quantization:
        return f"  # quantization_config: {checkpoint.quantization}; vLLM reads it itself"
    return ""


def _engine_lines(
    source: Source, checkpoint: Checkpoint | None, backend: str, gpus: int, context: int | None
) -> list[str]:
    if backend != "vllm" or checkpoint is None:
        return []
    lines = []
    if context:
        lines.append(f"  max-model-len: {context}")
    if gpus > 1:
        lines.append(f"  tensor-parallel-size: {gpus}  # from gpus, never asked")
    family = checkpoint.model_type
    parser = REASONING.get(family)
    r1 = "deepseek-r1" in source.title.lower()  # R1 and its distills (Qwen and Llama layouts)
    if r1:
        parser, family = "deepseek_r1", "DeepSeek-R1"
    if parser:
        lines.append(f"  reasoning-parser: {parser}  # vLLM's reasoning outputs docs: {family}")
    if family in HERMES_TOOLS:
        lines += [
            "  enable-auto-tool-choice: true  # vLLM's tool calling docs: Qwen2.5 and Qwen3",
            "  tool-call-parser: hermes  # use Hermes-style tool calls",
        ]
    return lines


def _quote(text: str) -> str:
    """A YAML scalar that reads back as the same string."""
    import yaml

    dumped: str = yaml.safe_dump(text, default_style=None, width=1000).strip()
    return dumped.removesuffix("\n...").removesuffix("...").strip()


def _write_checked(path: Path, text: str, catalog: Catalog, twin: tuple[str, str] | None) -> None:
    """Load the file, beside its twin (name, text), with the catalog's strict loader first; only
    a valid file is put in place, its twin first."""
    with tempfile.TemporaryDirectory() as scratch:
        trial = Path(scratch) / path.name
        trial.write_text(text, encoding="utf-8")
        if twin is not None:
            (Path(scratch) / "twins").mkdir()
            (Path(scratch) / "twins" / twin[0]).write_text(twin[1], encoding="utf-8")
        load_config(trial, catalog.backends)
        path.parent.mkdir(parents=True, exist_ok=True)
        if twin is not None:
            (path.parent / "twins").mkdir(exist_ok=True)
            shutil.copyfile(Path(scratch) / "twins" / twin[0], path.parent / "twins" / twin[0])
        shutil.copyfile(trial, path)
