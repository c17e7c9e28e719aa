"""Today's models as their authors publish them, for the plan's table "Today's models" in
docs/plan.md: each config.json (tests/fixtures/plan/README.md says where each comes from), a
safetensors file that is its header alone, with the tensor names, dtypes and shapes the published
checkpoint has (no weights), and the figures the authors publish. tests/test_plan_published.py
asserts each row; benchmarks/plan_published.py prints the table."""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
Header = dict[str, tuple[str, list[int]]]
SIZES = {"BF16": 2, "F32": 4, "U8": 1, "F8_E4M3": 1}
BLOCK = 128  # FP8 block quantization: one F32 scale per 128 x 128 block


@dataclass(frozen=True)
class Row:
    repo: str
    fixture: str  # its config.json, under tests/fixtures


# The authors' figures each row is held to (tests/test_plan_published.py):
# - gpt-oss-120b: OpenAI's model card (2025-08), table 1: 116.83 B parameters, 60.8 GiB checkpoint;
# - Qwen3-30B-A3B: Qwen's model card: 30.5 B in total, 3.3 B activated, BF16;
# - DeepSeek-V3: its model card: 685 B on the Hub, 671 B the main model and 14 B the
#   multi-token-prediction module;
# - Qwen3-8B-FP8: Qwen3-8B's model card: 8.2 B, 6.95 B of them not embeddings.
ROWS = (
    Row("openai/gpt-oss-120b", "plan/openai--gpt-oss-120b.json"),
    Row("Qwen/Qwen3-30B-A3B", "add/Qwen--Qwen3-30B-A3B.json"),
    Row("deepseek-ai/DeepSeek-V3", "plan/deepseek-ai--DeepSeek-V3.json"),
    Row("Qwen/Qwen3-8B-FP8", "add/Qwen--Qwen3-8B-FP8.json"),
)


def config(row: Row) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / row.fixture).read_text(encoding="utf-8"))
    data.pop("_source")
    return data


def _linear(name: str, out: int, inp: int, fp8: bool) -> Header:
    """A linear layer's weight; block FP8 adds its scales (`weight_scale_inv`)."""
    if not fp8:
        return {f"{name}.weight": ("BF16", [out, inp])}
    blocks = [math.ceil(out / BLOCK), math.ceil(inp / BLOCK)]
    return {f"{name}.weight": ("F8_E4M3", [out, inp]), f"{name}.weight_scale_inv": ("F32", blocks)}


def _mlp(prefix: str, hidden: int, width: int, fp8: bool) -> Header:
    tensors: Header = {}
    for name, out, inp in (("gate_proj", width, hidden), ("up_proj", width, hidden)):
        tensors |= _linear(f"{prefix}.{name}", out, inp, fp8)
    return tensors | _linear(f"{prefix}.down_proj", hidden, width, fp8)


def _ends(c: dict[str, Any]) -> Header:
    """Embeddings, the final norm and the LM head (untied in every row), in BF16."""
    vocab, hidden = c["vocab_size"], c["hidden_size"]
    return {
        "model.embed_tokens.weight": ("BF16", [vocab, hidden]),
        "model.norm.weight": ("BF16", [hidden]),
        "lm_head.weight": ("BF16", [vocab, hidden]),
    }


def qwen3(c: dict[str, Any]) -> Header:
    """Qwen3 and Qwen3 MoE (transformers' Qwen3 layout: q_norm and k_norm per head dim)."""
    fp8 = (c.get("quantization_config") or {}).get("quant_method") == "fp8"
    hidden, head, heads = c["hidden_size"], c["head_dim"], c["num_attention_heads"]
    kv = c["num_key_value_heads"]
    tensors = _ends(c)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}"
        for name, out, inp in (
            ("q_proj", heads * head, hidden),
            ("k_proj", kv * head, hidden),
            ("v_proj", kv * head, hidden),
            ("o_proj", hidden, heads * head),
        ):
            tensors |= _linear(f"{p}.self_attn.{name}", out, inp, fp8)
        for norm in ("self_attn.q_norm", "self_attn.k_norm"):
            tensors[f"{p}.{norm}.weight"] = ("BF16", [head])
        for norm in ("input_layernorm", "post_attention_layernorm"):
            tensors[f"{p}.{norm}.weight"] = ("BF16", [hidden])
        experts = c.get("num_experts", 0)
        if experts:
            tensors[f"{p}.mlp.gate.weight"] = ("BF16", [experts, hidden])
            for e in range(experts):
                tensors |= _mlp(f"{p}.mlp.experts.{e}", hidden, c["moe_intermediate_size"], fp8)
        else:
            tensors |= _mlp(f"{p}.mlp", hidden, c["intermediate_size"], fp8)
    return tensors


def gpt_oss(c: dict[str, Any]) -> Header:
    """gpt-oss: BF16 attention (with biases and sinks) and router; the experts' weights in MXFP4,
    `_blocks` of 16 bytes (32 values) and one E8M0 `_scales` byte per block, biases BF16."""
    hidden, head, heads = c["hidden_size"], c["head_dim"], c["num_attention_heads"]
    kv, experts, width = c["num_key_value_heads"], c["num_local_experts"], c["intermediate_size"]
    tensors = _ends(c)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}"
        for name, out, inp in (
            ("q_proj", heads * head, hidden),
            ("k_proj", kv * head, hidden),
            ("v_proj", kv * head, hidden),
            ("o_proj", hidden, heads * head),
        ):
            tensors[f"{p}.self_attn.{name}.weight"] = ("BF16", [out, inp])
            tensors[f"{p}.self_attn.{name}.bias"] = ("BF16", [out])
        tensors[f"{p}.self_attn.sinks"] = ("BF16", [heads])
        tensors[f"{p}.mlp.router.weight"] = ("BF16", [experts, hidden])
        tensors[f"{p}.mlp.router.bias"] = ("BF16", [experts])
        for name, out, inp in (("gate_up_proj", 2 * width, hidden), ("down_proj", hidden, width)):
            blocks = inp // 32
            tensors[f"{p}.mlp.experts.{name}_blocks"] = ("U8", [experts, out, blocks, 16])
            tensors[f"{p}.mlp.experts.{name}_scales"] = ("U8", [experts, out, blocks])
            tensors[f"{p}.mlp.experts.{name}_bias"] = ("BF16", [experts, out])
        for norm in ("input_layernorm", "post_attention_layernorm"):
            tensors[f"{p}.{norm}.weight"] = ("BF16", [hidden])
    return tensors


def _deepseek_layer(p: str, c: dict[str, Any], moe: bool) -> Header:
    """One DeepSeek-V3 decoder layer: latent attention, then a dense MLP or the routed and
    shared experts, every linear layer in block FP8; norms and the router BF16."""
    hidden, heads = c["hidden_size"], c["num_attention_heads"]
    rank, rope = c["kv_lora_rank"], c["qk_rope_head_dim"]
    nope, v = c["qk_nope_head_dim"], c["v_head_dim"]
    tensors: Header = {}
    for name, out, inp in (
        ("q_a_proj", c["q_lora_rank"], hidden),
        ("q_b_proj", heads * (nope + rope), c["q_lora_rank"]),
        ("kv_a_proj_with_mqa", rank + rope, hidden),
        ("kv_b_proj", heads * (nope + v), rank),
        ("o_proj", hidden, heads * v),
    ):
        tensors |= _linear(f"{p}.self_attn.{name}", out, inp, True)
    tensors[f"{p}.self_attn.q_a_layernorm.weight"] = ("BF16", [c["q_lora_rank"]])
    tensors[f"{p}.self_attn.kv_a_layernorm.weight"] = ("BF16", [rank])
    for norm in ("input_layernorm", "post_attention_layernorm"):
        tensors[f"{p}.{norm}.weight"] = ("BF16", [hidden])
    if not moe:
        return tensors | _mlp(f"{p}.mlp", hidden, c["intermediate_size"], True)
    experts, width = c["n_routed_experts"], c["moe_intermediate_size"]
    tensors[f"{p}.mlp.gate.weight"] = ("BF16", [experts, hidden])
    tensors[f"{p}.mlp.gate.e_score_correction_bias"] = ("F32", [experts])
    for e in range(experts):
        tensors |= _mlp(f"{p}.mlp.experts.{e}", hidden, width, True)
    return tensors | _mlp(f"{p}.mlp.shared_experts", hidden, width * c["n_shared_experts"], True)


def deepseek_v3(c: dict[str, Any]) -> Header:
    """DeepSeek-V3: 3 dense layers, 58 MoE layers, and the multi-token-prediction module as
    layer 61 (its own embeddings, projection and head beside one more MoE layer)."""
    tensors = _ends(c)
    layers, hidden = c["num_hidden_layers"], c["hidden_size"]
    for i in range(layers):
        tensors |= _deepseek_layer(f"model.layers.{i}", c, i >= c["first_k_dense_replace"])
    mtp = f"model.layers.{layers}"
    tensors |= _deepseek_layer(mtp, c, True)
    tensors[f"{mtp}.embed_tokens.weight"] = ("BF16", [c["vocab_size"], hidden])
    tensors[f"{mtp}.eh_proj.weight"] = ("BF16", [hidden, 2 * hidden])
    for norm in ("enorm", "hnorm", "shared_head.norm"):
        tensors[f"{mtp}.{norm}.weight"] = ("BF16", [hidden])
    tensors[f"{mtp}.shared_head.head.weight"] = ("BF16", [c["vocab_size"], hidden])
    return tensors


LAYOUTS = {"qwen3": qwen3, "qwen3_moe": qwen3, "gpt_oss": gpt_oss, "deepseek_v3": deepseek_v3}


def header_only(tensors: Header) -> bytes:
    """A safetensors file's header; the data it declares is left out (no weights)."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = SIZES[dtype] * math.prod(shape)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(raw)) + raw


def checkpoint_dir(root: Path, row: Row) -> Path:
    """A model folder as `toolkit plan --model` reads one: config.json and the header."""
    data = config(row)
    folder = root / row.repo.replace("/", "--")
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(data), encoding="utf-8")
    tensors = LAYOUTS[data["model_type"]](data)
    (folder / "model.safetensors").write_bytes(header_only(tensors))
    return folder
