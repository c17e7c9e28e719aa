"""Will it fit? GPU memory per GPU for a config, from the model's config.json facts.

vLLM reserves `gpu_memory_utilization` of each GPU; weights, activations (profiled at the largest
batch), non-torch memory and CUDA graphs come out of that budget, and the rest is KV cache. A config
fits when that KV cache holds at least one sequence of the context it asks for. Every constant
below names its source; the estimator errs on the side of "does not fit".
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from toolkit.catalog import BackendName, Config, ModelInfo
from toolkit.errors import UsageError

GIB = 2**30
# What an 80 GB A100/H100 offers: vLLM PR 10511 measured 79.22 GiB available on one.
DEFAULT_GPU_GIB = 79.22
# Bytes per parameter of the quantized layers. AWQ/GPTQ 4-bit with group size 128 also store an
# fp16 scale and a 4-bit zero per group (~0.02 B/param); GGUF Q4_K_M is ~4.85 bits per weight.
BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int4": 0.52, "q4": 0.61}
NON_TORCH_GIB = 1.79  # vLLM PR 10511, one GPU; NCCL buffers add more with tensor parallelism
NON_TORCH_TP_EXTRA_GIB = 0.6
CUDA_GRAPHS_GIB = 2.0  # field notes: 1-3 GiB; counted inside the budget to stay on the safe side
BATCHED_TOKENS = 8192  # vLLM's default max_num_batched_tokens for the OpenAI server on such GPUs
MAX_SEQS = 256  # vLLM's default max_num_seqs: logits of one step are kept in fp32
DEFAULT_UTILIZATION = 0.9
OLLAMA_CONTEXT = 4096  # Ollama's default num_ctx
OLLAMA_OVERHEAD_GIB = 1.0
DIFFUSERS_ACTIVATION_GIB = 3.0  # VAE decode and attention at 1024x1024 in bf16


@dataclass
class PerGpu:
    weights_gib: float
    kv_cache_gib: float
    overhead_gib: float
    total_gib: float
    kv_needed_gib: float


@dataclass
class Plan:
    config: str
    backend: str
    gpus: int
    gpu_memory_gib: float
    utilization: float
    context_tokens: int
    max_context_tokens: int
    fits: bool
    per_gpu: PerGpu
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_size(text: str) -> float:
    """GiB from '80GiB', '79.2 GiB', '80GB' (10^9 bytes) or a bare number (GiB)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(gib|gb|g)?\s*", text.lower())
    if not match:
        raise UsageError(f"--gpu-memory '{text}' is not a size; write it like 80GiB or 79.2.")
    value, unit = float(match.group(1)), match.group(2)
    return value * 1e9 / GIB if unit == "gb" else value


def weights_gib(info: ModelInfo) -> float:
    """All weights in GiB: the quantized layers at their width, the rest in 16 bits."""
    if info.weights_gib is not None:
        return info.weights_gib
    unquantized = info.unquantized_b if info.weights not in ("bf16", "fp16") else info.params_b
    quantized = info.params_b - unquantized
    return (quantized * BYTES[info.weights] + unquantized * 2.0) * 1e9 / GIB


def kv_bytes_per_token(info: ModelInfo, tp: int) -> float:
    """2 (K and V) x layers x KV heads on this GPU x head dim x 2 bytes (bf16 cache)."""
    assert info.layers and info.kv_heads and info.head_dim
    heads_here = max(1.0, info.kv_heads / tp)  # vLLM replicates KV heads when TP > KV heads
    return 2 * info.layers * heads_here * info.head_dim * 2


def activation_gib(info: ModelInfo, tp: int) -> float:
    """The profile run's peak: one batch of BATCHED_TOKENS through the widest layer, plus logits."""
    if not (info.hidden and info.intermediate and info.vocab):
        return 2.0
    per_token = 3 * info.intermediate / tp + 7 * info.hidden
    return (BATCHED_TOKENS * per_token * 2 + MAX_SEQS * info.vocab * 4) / GIB


def plan(
    config: Config,
    gpus: int | None = None,
    gpu_memory_gib: float = DEFAULT_GPU_GIB,
    max_model_len: int | None = None,
    info: ModelInfo | None = None,
) -> Plan:
    """Per-GPU memory and the longest context that fits, for the config's backend.

    `info` replaces the config's model facts (e.g. read from the weights by toolkit.modelinfo).
    """
    facts = info or config.info
    if facts is None:
        raise UsageError(
            f"{config.name} has no model facts (info:) to plan with; add them to its config "
            "file or pass --model."
        )
    gpus = config.gpus if gpus is None else gpus
    if config.backend == BackendName.VLLM and gpus:  # with no GPU, vLLM runs on the CPU
        return _vllm(config, facts, gpus, gpu_memory_gib, max_model_len)
    return _simple(config, facts, gpus, gpu_memory_gib, max_model_len)


def _requested_context(config: Config, info: ModelInfo, asked: int | None) -> int:
    configured = config.engine_args.get("max-model-len")
    if asked:
        return asked
    if isinstance(configured, int):
        return configured
    return info.max_position or 0


def _vllm(config: Config, info: ModelInfo, gpus: int, memory: float, asked: int | None) -> Plan:
    tp = max(1, gpus)
    utilization = float(
        config.engine_args.get(
            "gpu-memory-utilization",  # type: ignore[arg-type]
            DEFAULT_UTILIZATION,
        )
    )
    budget = memory * utilization
    weights = weights_gib(info) / tp
    overhead = (
        NON_TORCH_GIB
        + (NON_TORCH_TP_EXTRA_GIB if tp > 1 else 0.0)
        + activation_gib(info, tp)
        + CUDA_GRAPHS_GIB
    )
    kv_cache = budget - weights - overhead
    per_token = kv_bytes_per_token(info, tp)
    context = _requested_context(config, info, asked)
    kv_needed = context * per_token / GIB
    kv_tokens = max(0, int(kv_cache * GIB // per_token))
    longest = min(kv_tokens, info.max_position or kv_tokens)
    reasons = []
    if kv_cache <= 0:
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
    if info.max_position and context > info.max_position:
        reasons.append(f"the model takes at most {info.max_position} tokens, not {context}")
    if gpus < 1:
        reasons = ["a vLLM config needs at least one GPU"]
    per_gpu = PerGpu(
        _r(weights),
        _r(max(kv_cache, 0.0)),
        _r(overhead),
        _r(weights + overhead + max(kv_cache, 0.0)),
        _r(kv_needed),
    )
    return Plan(
        config.name,
        config.backend.value,
        gpus,
        _r(memory),
        utilization,
        context,
        longest,
        not reasons,
        per_gpu,
        reasons,
    )


def _simple(config: Config, info: ModelInfo, gpus: int, memory: float, asked: int | None) -> Plan:
    """Ollama: GGUF weights + KV for its context; diffusers: pipeline + activations."""
    context = 0
    kv = 0.0
    if config.backend == BackendName.OLLAMA:
        context = asked or OLLAMA_CONTEXT
        if info.layers and info.kv_heads and info.head_dim:
            kv = context * kv_bytes_per_token(info, 1) / GIB
        overhead = OLLAMA_OVERHEAD_GIB
    elif config.backend == BackendName.DIFFUSERS:
        overhead = DIFFUSERS_ACTIVATION_GIB
    else:
        overhead = 1.0
    share = max(1, gpus)
    weights = weights_gib(info) / share
    total = weights + kv / share + overhead
    reasons = []
    if gpus and total > memory:  # with no GPU it runs on the CPU: no GPU memory to exceed
        reasons.append(f"it needs {total:.1f} GiB per GPU and a GPU has {memory:.1f} GiB")
    per_gpu = PerGpu(_r(weights), _r(kv / share), _r(overhead), _r(total), _r(kv / share))
    return Plan(
        config.name,
        config.backend.value,
        gpus,
        _r(memory),
        1.0,
        context,
        context,
        not reasons,
        per_gpu,
        reasons,
    )


def _r(value: float) -> float:
    return round(value, 2)


def describe(result: Plan) -> str:
    """A table per GPU and the verdict, for humans."""
    p = result.per_gpu
    where = f"{result.gpus} GPU(s) of {result.gpu_memory_gib} GiB" if result.gpus else "CPU only"
    lines = [
        f"{result.config} ({result.backend}) on {where}, utilization {result.utilization:.2f}",
        f"  {'per GPU':<22}{'GiB':>8}",
        f"  {'weights':<22}{p.weights_gib:>8.2f}",
        f"  {'overhead':<22}{p.overhead_gib:>8.2f}",
        f"  {'KV cache':<22}{p.kv_cache_gib:>8.2f}",
        f"  {'total':<22}{p.total_gib:>8.2f}",
        f"  KV for {result.context_tokens} tokens: {p.kv_needed_gib:.2f} GiB; "
        f"longest context that fits: {result.max_context_tokens} tokens",
    ]
    if result.fits:
        lines.append("FITS")
    else:
        lines.append(
            "DOES NOT FIT: "
            + "; ".join(result.reasons)
            + ". Lower --max-model-len, add GPUs, or serve a quantized variant."
        )
    return "\n".join(lines)
