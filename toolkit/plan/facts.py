"""Model facts for the plan, read from the weights themselves: a local model directory (config.json
and the safetensors headers) or a Hugging Face repo (config.json and the safetensors metadata,
through huggingface_hub, which honours HF_HUB_OFFLINE and HF_ENDPOINT).

Parameters are counted from the tensors' names, dtypes and shapes, never their data. A quantized
checkpoint stores its layers differently, so counting elements would be wrong:
- AWQ and GPTQ pack 32 / bits values into each int32 `qweight` and add `qzeros`, `scales` and
  (GPTQ) `g_idx` (vLLM's awq.py and gptq.py loaders);
- compressed-tensors `pack-quantized` packs the same way into `weight_packed` beside
  `weight_scale`, `weight_zero_point` and `weight_shape`; `float-quantized` keeps `weight` in
  F8_E4M3 beside `weight_scale` (and `input_scale` when static);
- fbgemm_fp8 (Meta's FP8 405B) and fp8 keep `weight` in F8_E4M3 beside `weight_scale`.
Scales, zero points, group indices and shapes are bookkeeping, not parameters (the plan's bytes
per 4-bit parameter include them). What a quantized checkpoint keeps in 16 bits becomes
`unquantized_b`, so the plan prices each part at its own width.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.catalog import twins
from toolkit.catalog.configs import ModelInfo
from toolkit.errors import ToolkitError, UsageError

DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "bf16"}
# Tensors a quantized checkpoint adds beside its weights: not parameters of the model.
BOOKKEEPING = (
    ".qzeros",
    ".scales",
    ".g_idx",
    ".weight_scale",
    ".weight_zero_point",
    ".weight_shape",
    ".weight_g_idx",
    ".input_scale",
    ".input_scale_ub",
    ".input_zero_point",
    ".output_scale",
    ".k_scale",
    ".v_scale",
    ".weight_scale_inv",  # block-quantized FP8 (Qwen3-*-FP8, DeepSeek-V3): one scale per block
    "_scales",  # MXFP4 (gpt-oss): one E8M0 scale per 32 values
)
PACKED = (".qweight", ".weight_packed")  # int32 words, each holding 32 / bits values
MXFP4_BLOCKS = "_blocks"  # MXFP4 (gpt-oss): bytes, each holding two 4-bit values
FLOAT8 = ("F8_E4M3", "F8_E5M2")
KNOWN = (
    "awq, gptq (4-bit), compressed-tensors (4-bit pack-quantized or 8-bit float-quantized), "
    "fbgemm_fp8, fp8 and mxfp4"
)

# name -> (safetensors dtype, shape)
Tensors = dict[str, tuple[str, list[int]]]


def read(model: str, revision: str | None = None) -> ModelInfo:
    """Facts of a local directory, or else of a Hugging Face repo id."""
    path = Path(model)
    if path.is_dir():
        config = _json(path / "config.json")
        tensors: Tensors = {}
        for file in sorted(path.glob("*.safetensors")):
            tensors.update(_safetensors_header(file))
    else:
        config, tensors = _from_hub(model, revision)
    if not tensors:
        raise ToolkitError(
            f"{model} holds no safetensors weights to count; give the plan an "
            "info: block in the config instead."
        )
    return from_config(config, tensors)


def from_config(config: dict[str, Any], tensors: Tensors) -> ModelInfo:
    """ModelInfo from a transformers config.json (the text model's, for vision-language ones)
    and the checkpoint's tensors."""
    text = config.get("text_config") or config.get("llm_config") or config
    heads = text["num_attention_heads"]
    hidden = text["hidden_size"]
    weights, bits = _scheme(config)
    params, unquantized = count(_served(text, tensors).items(), bits if weights else None)
    if weights is None:
        dtype = config.get("torch_dtype") or config.get("dtype") or text.get("torch_dtype")
        weights, unquantized = DTYPES.get(str(dtype), "bf16"), 0
    return ModelInfo.model_validate(
        {
            "params_b": params / 1e9,
            "layers": text["num_hidden_layers"],
            "heads": heads,  # not hidden / head_dim: Qwen3 and Gemma 2 differ
            **twins.attention(config, text),
            "hidden": hidden,
            "intermediate": text.get("intermediate_size"),
            "vocab": text.get("vocab_size"),
            "max_position": text.get("max_position_embeddings"),
            "weights": weights,
            "unquantized_b": unquantized / 1e9,
        }
    )


def _served(text: dict[str, Any], tensors: Tensors) -> Tensors:
    """The tensors vLLM loads: a multi-token-prediction module (DeepSeek-V3's layer 61, beyond
    num_hidden_layers) is skipped unless speculative decoding asks for it."""
    if not text.get("num_nextn_predict_layers"):
        return tensors
    layers = text["num_hidden_layers"]
    index = re.compile(r"model\.layers\.(\d+)\.")
    return {
        name: tensor
        for name, tensor in tensors.items()
        if not ((found := index.match(name)) and int(found.group(1)) >= layers)
    }


def count(
    tensors: Iterable[tuple[str, tuple[str, list[int]]]], bits: int | None
) -> tuple[int, int]:
    """(parameters, of which unquantized) of a checkpoint's tensors. `bits` per packed value
    for a quantized checkpoint (0 where nothing is packed), None for an unquantized one.
    Unquantized means neither packed nor 8-bit float."""
    params = unquantized = 0
    for name, (dtype, shape) in tensors:
        if bits is not None and name.endswith(BOOKKEEPING):
            continue
        elements = math.prod(shape)
        if bits and name.endswith(PACKED):
            params += elements * (32 // bits)
        elif bits is not None and dtype == "U8" and name.endswith(MXFP4_BLOCKS):
            params += elements * 2
        elif dtype in FLOAT8:
            params += elements
        else:
            params += elements
            unquantized += elements
    return params, unquantized


def _scheme(config: dict[str, Any]) -> tuple[str | None, int]:
    """(the plan's weight width, bits per packed value) from quantization_config; (None, 0)
    for an unquantized checkpoint."""
    quant = config.get("quantization_config") or {}
    method = quant.get("quant_method")
    if not method:
        return None, 0
    if method in ("awq", "gptq"):
        bits = int(quant.get("bits") or quant.get("w_bit") or 0)
        if bits == 4:
            return "int4", bits
    elif method in ("fbgemm_fp8", "fp8"):
        return "fp8", 0
    elif method == "mxfp4":  # 4.25 bits a value with its scales
        return "mxfp4", 0
    elif method == "compressed-tensors":
        groups = (quant.get("config_groups") or {}).values()
        weights = {
            (g["weights"].get("type"), g["weights"].get("num_bits"))
            for g in groups
            if g.get("weights")
        }
        fmt = quant.get("format")
        if fmt == "pack-quantized" and weights == {("int", 4)}:
            return "int4", 4
        if fmt in ("float-quantized", "naive-quantized") and weights == {("float", 8)}:
            return "fp8", 0
    raise ToolkitError(
        f"the checkpoint's quantization ({_describe(quant)}) is not one the plan "
        f"knows ({KNOWN}); give the plan an info: block in the config instead."
    )


def _describe(quant: dict[str, Any]) -> str:
    """'gptq 8-bit', 'compressed-tensors int-quantized', 'bitsandbytes'."""
    method = quant["quant_method"]
    bits = quant.get("bits") or quant.get("w_bit")
    if method == "compressed-tensors":
        return f"{method} {quant.get('format')}"
    return f"{method} {bits}-bit" if bits else str(method)


def _json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ToolkitError(
            f"cannot read {path} ({exc}); point --model at a model directory with a config.json."
        ) from None
    return data


def _safetensors_header(path: Path) -> Tensors:
    """Dtype and shape of each tensor in one safetensors file, from its JSON header alone."""
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header: dict[str, Any] = json.loads(handle.read(length))
    return {k: (t["dtype"], t["shape"]) for k, t in header.items() if k != "__metadata__"}


def _from_hub(repo: str, revision: str | None) -> tuple[dict[str, Any], Tensors]:
    try:
        from huggingface_hub import constants, get_safetensors_metadata, hf_hub_download
    except ImportError:
        raise ToolkitError(
            "reading a Hugging Face repo needs huggingface_hub; pip install "
            "huggingface_hub, or point --model at a local directory."
        ) from None
    if not offline(constants.HF_HUB_OFFLINE):
        model_info(repo, revision, constants.ENDPOINT)  # unreachable: one sentence, no retries
    try:
        config = json.loads(
            Path(hf_hub_download(repo, "config.json", revision=revision)).read_text(
                encoding="utf-8"
            )
        )
        metadata = get_safetensors_metadata(repo, revision=revision)
    except Exception as exc:
        raise ToolkitError(
            f"cannot read {repo} from the Hugging Face Hub "
            f"({type(exc).__name__}); check the name and the network (or "
            "HF_HUB_OFFLINE), or point --model at a local directory."
        ) from None
    tensors: Tensors = {}
    for file in metadata.files_metadata.values():
        tensors.update({k: (t.dtype, list(t.shape)) for k, t in file.tensors.items()})
    return config, tensors


HUB_TIMEOUT_S = 5.0  # one request to the Hub before its client, which retries for ~24 s


def offline(imported: bool) -> bool:
    """HF_HUB_OFFLINE as huggingface_hub read it at import, or as the environment says now."""
    now = os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
    return imported or now


# What `toolkit add` reads from a checkpoint: every fact a config needs, none asked of the user.
DTYPE_BYTES = {"F64": 8, "F32": 4, "BF16": 2, "F16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1}
DTYPE_BYTES |= {"U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1}


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint's facts: from config.json, and its safetensors headers where there are any."""

    architecture: str
    model_type: str
    info: ModelInfo
    quantization: str | None  # e.g. "fp8 block 128x128", "awq 4-bit"; None when unquantized
    params_by_dtype: dict[str, int]  # safetensors dtype -> parameters (empty: estimated)
    total_bytes: int  # of the tensors the headers declare (0: no headers)
    tied_embeddings: bool
    experts: int | None  # routed experts per MoE layer
    experts_per_token: int | None
    vision: bool
    rope: str | None  # the RoPE scaling type, where the config sets one
    counted: bool  # parameters counted from the headers (else estimated from config.json)
    config: dict[str, Any] = field(default_factory=dict, repr=False)  # config.json itself


def checkpoint(config: dict[str, Any], tensors: Tensors) -> Checkpoint:
    """The facts of a checkpoint: config.json and its tensors (none: estimated from shapes)."""
    text = config.get("text_config") or config.get("llm_config") or config
    architectures = config.get("architectures") or []
    quant = config.get("quantization_config") or {}
    info = from_config(config, tensors) if tensors else _estimated(config, text)
    max_context, rope = twins.context(config, text)
    if max_context:
        info = info.model_copy(update={"max_position": max_context})
    by_dtype: dict[str, int] = {}
    total = 0
    for dtype, shape in tensors.values():
        by_dtype[dtype] = by_dtype.get(dtype, 0) + math.prod(shape)
        total += math.prod(shape) * DTYPE_BYTES.get(dtype, 2)
    experts = _experts(text)
    return Checkpoint(
        architecture=str(architectures[0]) if architectures else "",
        model_type=str(config.get("model_type") or ""),
        info=info,
        quantization=_quantization(quant) if quant.get("quant_method") else None,
        params_by_dtype=dict(sorted(by_dtype.items())),
        total_bytes=total,
        tied_embeddings=bool(
            config.get("tie_word_embeddings", text.get("tie_word_embeddings", False))
        ),
        experts=int(experts) if experts else None,
        experts_per_token=text.get("num_experts_per_tok") or text.get("experts_per_token"),
        vision=bool(config.get("vision_config")),
        rope=rope,
        counted=bool(tensors),
        config=config,
    )


def _experts(text: dict[str, Any]) -> int:
    """Routed experts per MoE layer (Qwen3 MoE, DeepSeek, Mixtral / gpt-oss name them apart)."""
    found = text.get("num_experts") or text.get("n_routed_experts") or text.get("num_local_experts")
    return int(found or 0)


def _quantization(quant: dict[str, Any]) -> str:
    """'fp8 block 128x128', 'awq 4-bit', 'mxfp4'."""
    block = quant.get("weight_block_size")
    if quant.get("quant_method") == "fp8" and block:
        return "fp8 block " + "x".join(map(str, block))
    return _describe(quant)


def _estimated(config: dict[str, Any], text: dict[str, Any]) -> ModelInfo:
    """ModelInfo from config.json alone (a folder or repo without safetensors headers): the
    language model's parameters from its shapes (attention, MLP or every expert, embeddings),
    a decoder as Llama, Qwen and Mistral lay it out; a vision tower is not counted."""
    hidden, layers = text["hidden_size"], text["num_hidden_layers"]
    heads = text["num_attention_heads"]
    shape = twins.attention(config, text)
    kv, head_dim = shape["kv_heads"], shape["head_dim"]
    attention = hidden * head_dim * (2 * heads + 2 * kv)
    experts = _experts(text)
    if experts:
        width = text.get("moe_intermediate_size") or text["intermediate_size"]
        mlp = experts * 3 * hidden * width + experts * hidden
    else:
        mlp = 3 * hidden * text["intermediate_size"]
    vocab = text.get("vocab_size") or 0
    tied = config.get("tie_word_embeddings", text.get("tie_word_embeddings", False))
    params = layers * (attention + mlp + 2 * hidden) + vocab * hidden * (1 if tied else 2)
    weights, _ = _scheme(config)
    dtype = config.get("torch_dtype") or config.get("dtype") or text.get("torch_dtype")
    unquantized = vocab * hidden * (1 if tied else 2) if weights else 0
    return ModelInfo.model_validate(
        {
            "params_b": params / 1e9,
            "layers": layers,
            "heads": heads,
            **shape,
            "hidden": hidden,
            "intermediate": text.get("intermediate_size"),
            "vocab": vocab or None,
            "max_position": text.get("max_position_embeddings"),
            "weights": weights or DTYPES.get(str(dtype), "bf16"),
            "unquantized_b": unquantized / 1e9,
        }
    )


def local_checkpoint(path: Path) -> Checkpoint:
    """A local model folder: config.json, and the headers of its safetensors files if any."""
    config = _json(path / "config.json")
    tensors: Tensors = {}
    for file in sorted(path.glob("*.safetensors")):
        tensors.update(_safetensors_header(file))
    return checkpoint(config, tensors)


def model_info(repo: str, revision: str | None, endpoint: str) -> dict[str, Any]:
    """The Hub's model info, in one request without retries; refusals as one sentence."""
    import httpx

    url = f"{endpoint.rstrip('/')}/api/models/{repo}/revision/{revision or 'main'}"
    from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

    try:
        response = httpx.get(url, headers=build_hf_headers(), timeout=HUB_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise ToolkitError(
            f"cannot reach the Hugging Face Hub at {endpoint} ({type(exc).__name__}); check "
            "the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to read the local cache."
        ) from None
    if response.status_code in (401, 403, 404):  # the Hub answers 401 for a missing repo too
        at = f" at revision {revision}" if revision else ""
        raise UsageError(
            f"{repo}{at} is not a model on {endpoint} that this client may read; check the "
            "name (org/name[@revision]), or set HF_TOKEN for a private or gated repo."
        )
    if response.status_code != 200:
        raise ToolkitError(
            f"the Hub at {endpoint} answered {response.status_code} for {repo}; try again later."
        )
    data: dict[str, Any] = response.json()
    return data
