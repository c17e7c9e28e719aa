"""Will it fit? GPU memory per GPU for a config, from the model's config.json facts.

vLLM reserves `gpu_memory_utilization` of each GPU; weights, activations (profiled at the largest
batch), non-torch memory and CUDA graphs come out of that budget, and the rest is KV cache. A config
fits when that KV cache holds at least one sequence of the context it asks for. Every constant
below names its source; the estimator errs on the side of "does not fit". A fact the verdict
needs and the config lacks (the context vLLM would serve, the KV cache's shape) is named in
`unknown`, never priced at zero: the verdict is then neither yes nor no. A CPU config (no GPU)
is planned against its container's memory limit.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from toolkit.catalog.backends import Backend
from toolkit.catalog.configs import Config, ModelInfo, attention_heads
from toolkit.errors import UsageError
from toolkit.service.hardening import memory_limit

GIB = 2**30
# What an 80 GB A100/H100 offers: vLLM PR 10511 measured 79.22 GiB available on one.
DEFAULT_GPU_GIB = 79.22
# Bytes per parameter of the quantized layers. AWQ/GPTQ 4-bit with group size 128 also store an
# fp16 scale and a 4-bit zero per group (~0.02 B/param); MXFP4 (gpt-oss) stores one 8-bit scale
# per 32 4-bit values (4.25 bits, as vLLM keeps them on the GPU); GGUF Q4_K_M is ~4.85 bits.
BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int4": 0.52, "mxfp4": 0.53125, "q4": 0.61}
NON_TORCH_GIB = 1.79  # vLLM PR 10511, one GPU; NCCL buffers add more with tensor parallelism
NON_TORCH_TP_EXTRA_GIB = 0.6
CUDA_GRAPHS_GIB = 2.0  # field notes: 1-3 GiB; counted inside the budget to stay on the safe side
# vLLM's defaults for the OpenAI server on a GPU of >= 70 GiB that is not an A100 (H100, H200):
# 8192 batched tokens and 1024 sequences (EngineArgs.get_batch_defaults, vllm/engine/arg_utils.py).
# Smaller cards and A100s get 2048 and 256, so these err towards "does not fit" there.
BATCHED_TOKENS = 8192
MAX_SEQS = 1024  # the sampler's profile run keeps one step's logits per sequence in fp32
KV_BLOCK_TOKENS = 16  # vLLM's default --block-size on CUDA
DEFAULT_UTILIZATION = 0.9


@dataclass
class PerGpu:
    weights_gib: float
    kv_cache_gib: float | None  # None: unknown (the model facts lack the KV cache's shape)
    overhead_gib: float
    total_gib: float | None
    kv_needed_gib: float | None


@dataclass
class Plan:
    config: str
    backend: str
    gpus: int
    gpu_memory_gib: float
    utilization: float
    context_tokens: int
    max_context_tokens: int
    fits: bool | None  # None: unknown, the facts in `unknown` are missing
    per_gpu: PerGpu
    reasons: list[str] = field(default_factory=list)
    advice: str = ""  # what can help when it does not fit
    nodes: int = 1
    unknown: list[str] = field(default_factory=list)  # what the verdict needs and is not known
    memory_limit_gib: float | None = None  # a CPU plan's budget: the container's memory limit

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_size(text: str) -> float:
    """GiB from '80GiB', '79.2 GiB', '80GB' (10^9 bytes) or a bare number (GiB)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(gib|gb|g)?\s*", text.lower())
    if not match:
        raise UsageError(f"--gpu-memory '{text}' is not a size; write it like 80GiB or 79.2.")
    value, unit = float(match.group(1)), match.group(2)
    if value <= 0:
        raise UsageError(f"--gpu-memory '{text}' is not above zero; give one GPU's memory.")
    return value * 1e9 / GIB if unit == "gb" else value


def limit_gib(text: str) -> float:
    """GiB from a Compose memory size ('8g', '512m', '1048576k'; Docker's units are binary)."""
    match = re.fullmatch(r"([0-9]+)([kmg])", text)
    assert match, "validated by the catalog (MemorySize)"
    return int(match.group(1)) * {"k": 2**-20, "m": 2**-10, "g": 1.0}[match.group(2)]


def _verdict(reasons: list[str], unknown: list[str]) -> bool | None:
    """No when a known fact rules it out, unknown when a missing fact could, else yes."""
    if reasons:
        return False
    return None if unknown else True


def parallel_problem(info: ModelInfo, tp: int) -> str | None:
    """Why vLLM would refuse this tensor-parallel size for the model's heads, or None."""
    heads = attention_heads(info)
    if tp > 1 and heads and heads % tp:
        return f"{tp} GPUs do not divide the model's {heads} attention heads"
    kv = info.kv_heads
    if tp > 1 and kv and (kv % tp if tp <= kv else tp % kv):
        return f"{tp} GPUs and the model's {kv} KV heads do not divide one another"
    return None


def weights_gib(info: ModelInfo) -> float:
    """All weights in GiB: the quantized layers at their width, the rest in 16 bits."""
    if info.weights_gib is not None:
        return info.weights_gib
    assert info.params_b is not None, "validation demands params_b without weights_gib"
    unquantized = info.unquantized_b if info.weights not in ("bf16", "fp16") else info.params_b
    quantized = info.params_b - unquantized
    return (quantized * BYTES[info.weights] + unquantized * 2.0) * 1e9 / GIB


def kv_bytes_per_token(info: ModelInfo, tp: int) -> float:
    """2 (K and V) x layers x KV heads on this GPU x head dim x 2 bytes (bf16 cache). With
    multi-head latent attention vLLM caches one latent per token and layer instead, of
    kv_lora_rank + qk_rope_head_dim values (ModelConfig.get_head_size, one KV head), whole on
    every tensor-parallel rank. Every layer is counted, sliding-window ones too: vLLM's
    discount for those is kv_bytes_needed's."""
    if info.layers and info.kv_lora_rank and info.qk_rope_head_dim:
        return info.layers * (info.kv_lora_rank + info.qk_rope_head_dim) * 2
    assert info.layers and info.kv_heads and info.head_dim
    heads_here = max(1.0, info.kv_heads / tp)  # vLLM replicates KV heads when TP > KV heads
    return 2 * info.layers * heads_here * info.head_dim * 2


def _window_tokens(info: ModelInfo, context: int) -> int:
    """The tokens a sliding-window layer keeps for one sequence in vLLM: the window less one plus
    a step's batched tokens, at most the context, in blocks plus one (SlidingWindowSpec's
    max_memory_usage_bytes)."""
    assert info.sliding_window
    tokens = min(info.sliding_window - 1 + BATCHED_TOKENS, context)
    return (math.ceil(tokens / KV_BLOCK_TOKENS) + 1) * KV_BLOCK_TOKENS


def kv_bytes_needed(info: ModelInfo, tp: int, context: int) -> float:
    """One sequence's KV cache: every layer's for each token, except that vLLM's hybrid KV cache
    manager keeps only a window's worth for sliding-window layers (kv_cache_utils.py)."""
    per_token = kv_bytes_per_token(info, tp)
    if not (info.sliding_window and info.sliding_layers and info.layers):
        return context * per_token
    per_layer = per_token / info.layers
    full = info.layers - info.sliding_layers
    return per_layer * (full * context + info.sliding_layers * _window_tokens(info, context))


def tokens_held(info: ModelInfo, tp: int, kv_cache_bytes: float) -> int:
    """The longest context whose KV cache (kv_bytes_needed) fits in `kv_cache_bytes`."""
    per_token = kv_bytes_per_token(info, tp)
    every_layer = max(0, int(kv_cache_bytes // per_token))
    if not (info.sliding_window and info.sliding_layers and info.layers):
        return every_layer
    longest = max(every_layer, info.max_position or every_layer)
    if kv_bytes_needed(info, tp, longest) <= kv_cache_bytes:
        return longest  # only sliding layers, or room for the whole context
    low, high = every_layer, longest  # kv_bytes_needed grows with the context: bisect
    while low < high:
        middle = (low + high + 1) // 2
        if kv_bytes_needed(info, tp, middle) <= kv_cache_bytes:
            low = middle
        else:
            high = middle - 1
    return low


def activation_gib(info: ModelInfo, tp: int) -> float:
    """The profile run's peak: one batch of BATCHED_TOKENS through the widest layer, plus logits."""
    if not (info.hidden and info.intermediate and info.vocab):
        return 2.0
    per_token = 3 * info.intermediate / tp + 7 * info.hidden
    return (BATCHED_TOKENS * per_token * 2 + MAX_SEQS * info.vocab * 4) / GIB


def plan(
    config: Config,
    backend: Backend,
    gpus: int | None = None,
    gpu_memory_gib: float = DEFAULT_GPU_GIB,
    max_model_len: int | None = None,
    info: ModelInfo | None = None,
) -> Plan:
    """Per-GPU memory and the longest context that fits, for the config's backend.

    `info` replaces the config's model facts (e.g. read from the weights by toolkit.plan.facts).
    """
    facts = info or config.info
    if facts is None:
        raise UsageError(
            f"{config.name} has no model facts (info:) to plan with; add them to its config "
            "file or pass --model."
        )
    gpus = config.gpus if gpus is None else gpus
    if backend.memory == "vllm":
        if not (facts.layers and facts.kv_heads and facts.head_dim):
            raise UsageError(
                f"the model facts of {config.name} lack layers, kv_heads or head_dim, which "
                "vLLM's plan needs; give them in its info: block or read them with --model."
            )
        return _vllm(config, backend, facts, gpus, gpu_memory_gib, max_model_len)
    return _weights(config, backend, facts, gpus, gpu_memory_gib, max_model_len)


def _requested_context(config: Config, info: ModelInfo, asked: int | None) -> int:
    configured = config.engine_args.get("max-model-len")
    if asked:
        return asked
    if isinstance(configured, int):
        return configured
    return info.max_position or 0


def _vllm(
    config: Config, backend: Backend, info: ModelInfo, gpus: int, memory: float, asked: int | None
) -> Plan:
    # `gpus` is per node. Pipeline stages split the layers (and their KV cache) across nodes;
    # tensor parallelism splits each stage over the GPUs left to it.
    if config.engine_args.get("disable-hybrid-kv-cache-manager") is True:
        # vLLM then turns sliding-window layers into full ones (unify_hybrid_kv_cache_specs)
        info = info.model_copy(update={"sliding_window": None, "sliding_layers": None})
    stages = config.engine_args.get(backend.pipeline_flag, 1) if backend.pipeline_flag else 1
    pp = stages if isinstance(stages, int) and stages > 0 else 1
    tp = max(1, gpus * config.nodes // pp)
    stage_share = math.ceil(info.layers / pp) / info.layers if info.layers else 1 / pp
    utilization = float(
        config.engine_args.get(
            "gpu-memory-utilization",  # type: ignore[arg-type]
            DEFAULT_UTILIZATION,
        )
    )
    budget = memory * utilization
    weights, overhead = _vllm_fixed(info, tp, stage_share)
    kv_cache = budget - weights - overhead
    context = _requested_context(config, info, asked)
    unknown = []
    if not context:
        unknown.append(
            "the context vLLM would serve is unknown: add info.max_position (the model's "
            "max_position_embeddings) or engine_args.max-model-len"
        )
    kv_needed = kv_bytes_needed(info, tp, context) * stage_share / GIB
    kv_tokens = tokens_held(info, tp, max(0.0, kv_cache) * GIB / stage_share)
    longest = min(kv_tokens, info.max_position or kv_tokens)
    reasons = []
    advice = ""
    if kv_cache <= 0:
        need = _fewest_gpus(info, budget)
        advice = (
            f"Serve it on at least {need} such GPUs (--gpu-count {need}), or a quantized variant."
            if need
            else "Serve a quantized variant: no tensor-parallel size of such GPUs holds it."
        )
        reasons.append(
            f"the weights ({weights:.1f} GiB) and overheads ({overhead:.1f} GiB) "
            f"exceed the {budget:.1f} GiB vLLM may use per GPU "
            f"({utilization:.2f} of {memory:.1f} GiB)"
        )
    elif kv_tokens < context:
        reasons.append(
            f"the KV cache left ({kv_cache:.1f} GiB per GPU) holds {kv_tokens} "
            f"tokens, fewer than the {context} asked"
        )
        advice = f"Lower --max-model-len to {longest} or less, or add GPUs."
    if info.max_position and context > info.max_position:
        reasons.append(f"the model takes at most {info.max_position} tokens, not {context}")
        advice = f"Ask for at most {info.max_position} tokens (--max-model-len)."
    problem = parallel_problem(info, tp)
    if problem:
        reasons.append(f"vLLM refuses it: {problem}")
        advice = f"Use a GPU count that does: {', '.join(map(str, _counts(info)))}."
    if gpus < backend.min_gpus:
        reasons = [f"a {backend.name} config needs at least {backend.min_gpus} GPU(s)"]
        advice = f"Plan it with --gpu-count {backend.min_gpus} or more."
    per_gpu = PerGpu(
        _r(weights),
        _r(max(kv_cache, 0.0)),
        _r(overhead),
        _r(weights + overhead + max(kv_cache, 0.0)),
        _r(kv_needed) if context else None,
    )
    return Plan(
        config.name,
        config.backend,
        gpus,
        _r(memory),
        utilization,
        context,
        longest,
        _verdict(reasons, unknown),
        per_gpu,
        reasons,
        advice,
        config.nodes,
        unknown,
    )


def _vllm_fixed(info: ModelInfo, tp: int, stage_share: float = 1.0) -> tuple[float, float]:
    """Per GPU: the weights' share (of its pipeline stage), and all else that is not KV cache."""
    overhead = (
        NON_TORCH_GIB
        + (NON_TORCH_TP_EXTRA_GIB if tp > 1 else 0.0)
        + activation_gib(info, tp)
        + CUDA_GRAPHS_GIB
    )
    return weights_gib(info) * stage_share / tp, overhead


def _counts(info: ModelInfo, most: int = 8) -> list[int]:
    """The GPU counts up to `most` that vLLM accepts for this model's heads."""
    return [n for n in range(1, most + 1) if parallel_problem(info, n) is None]


def _fewest_gpus(info: ModelInfo, budget: float) -> int | None:
    """The fewest GPUs (of one host) whose budget holds the weights and overheads, if any."""
    for n in _counts(info):
        weights, overhead = _vllm_fixed(info, n)
        if weights + overhead < budget:
            return n
    return None


def _weights(
    config: Config, backend: Backend, info: ModelInfo, gpus: int, memory: float, asked: int | None
) -> Plan:
    """Weights, the KV cache of the backend's context (Ollama's num_ctx) and a fixed overhead,
    against each GPU's memory, or with no GPU against the container's memory limit."""
    context = (asked or backend.kv_context) if backend.kv_context else 0
    kv: float | None = 0.0
    unknown = []
    if context and info.layers and info.kv_heads and info.head_dim:
        kv = context * kv_bytes_per_token(info, 1) / GIB
    elif context:
        kv = None
        unknown.append(
            f"the KV cache of its {context}-token context is unknown: add info.layers, kv_heads "
            "and head_dim (the model's config.json)"
        )
    overhead = backend.overhead_gib
    share = max(1, gpus)
    weights = weights_gib(info) / share
    kv_share = None if kv is None else kv / share
    known = weights + (kv_share or 0.0) + overhead
    needs = f"{'at least ' if kv is None else ''}{known:.1f} GiB"
    reasons = []
    advice = ""
    limit = limit_text = None
    if not gpus:  # on the CPU: the container's memory limit is the budget
        limit_text = memory_limit(backend, config)
        limit = limit_gib(limit_text)
        if known > limit:
            reasons.append(
                f"it needs {needs} of memory and its memory limit ({limit_text}) "
                f"allows {limit:.1f} GiB"
            )
            advice = (
                "Raise its memory_limit (the host must have the memory), or serve it on GPUs "
                "or a smaller or quantized variant."
            )
    elif known > memory:
        reasons.append(f"it needs {needs} per GPU and a GPU has {memory:.1f} GiB")
        advice = "Use GPUs with more memory, or a smaller or quantized variant."
    total = None if kv_share is None else _r(known)
    kv_value = None if kv_share is None else _r(kv_share)
    per_gpu = PerGpu(_r(weights), kv_value, _r(overhead), total, kv_value)
    return Plan(
        config.name,
        config.backend,
        gpus,
        _r(memory),
        1.0,
        context,
        context,
        _verdict(reasons, unknown),
        per_gpu,
        reasons,
        advice,
        unknown=unknown,
        memory_limit_gib=None if limit is None else _r(limit),
    )


def _r(value: float) -> float:
    return round(value, 2)


def _column(value: float | None) -> str:
    """A figure of the table, or 'unknown' where the facts do not tell it."""
    return f"{'unknown' if value is None else f'{value:.2f}':>8}"


def verdict(result: Plan) -> str:
    """The last line: FITS, DOES NOT FIT with why and what helps, or UNKNOWN with what to add."""
    if result.fits:
        return "FITS"
    if result.fits is None:
        return "UNKNOWN: " + "; ".join(result.unknown) + "."
    return ("DOES NOT FIT: " + "; ".join(result.reasons) + ". " + result.advice).rstrip()


def describe(result: Plan) -> str:
    """A table per GPU and the verdict, for humans."""
    p = result.per_gpu
    if not result.gpus:
        kv = ""
        if p.kv_cache_gib is None:
            kv = ", KV cache unknown"
        elif p.kv_cache_gib:
            kv = f", KV cache {p.kv_cache_gib:.2f} GiB"
        limit = result.memory_limit_gib
        return "\n".join(
            [
                f"{result.config} ({result.backend}) on the CPU: no GPU needed",
                f"  host memory: weights {p.weights_gib:.2f} GiB, overhead {p.overhead_gib:.2f} "
                f"GiB{kv}" + ("" if limit is None else f"; memory limit {limit:.2f} GiB"),
                verdict(result),
            ]
        )
    where = f"{result.gpus} GPU(s) of {result.gpu_memory_gib} GiB"
    if result.nodes > 1:
        where = f"{result.nodes} nodes x {where}"
    lines = [
        f"{result.config} ({result.backend}) on {where}, utilization {result.utilization:.2f}",
        f"  {'per GPU':<22}{'GiB':>8}",
        f"  {'weights':<22}{p.weights_gib:>8.2f}",
        f"  {'overhead':<22}{p.overhead_gib:>8.2f}",
        f"  {'KV cache':<22}{_column(p.kv_cache_gib)}",
        f"  {'total':<22}{_column(p.total_gib)}",
    ]
    if result.context_tokens and p.kv_needed_gib is not None:
        lines.append(
            f"  KV for {result.context_tokens} tokens: {p.kv_needed_gib:.2f} GiB; "
            f"longest context that fits: {result.max_context_tokens} tokens"
        )
    elif result.max_context_tokens and p.kv_cache_gib is not None:
        lines.append(f"  longest context that fits: {result.max_context_tokens} tokens")
    lines.append(verdict(result))
    return "\n".join(lines)
