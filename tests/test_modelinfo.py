"""`toolkit plan --model` on quantized checkpoints: tiny checkpoints written in each format with
the tensor names, shapes and dtypes the real quantizers write (AutoAWQ's and AutoGPTQ's packed
int32 layers, compressed-tensors' `weight_packed` and FP8 `weight`, Meta's fbgemm_fp8), counted
from their safetensors headers as the plan reads any model directory."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from toolkit.errors import ToolkitError
from toolkit.plan import facts as modelinfo
from toolkit.plan import memory as plan

if TYPE_CHECKING:
    import torch

# torch writes the checkpoints; it is imported inside the helpers so that the light unit tests
# collect this module without it.
pytestmark = pytest.mark.models

# A tiny Llama: 2 layers, hidden 256, MLP 512, 4 heads of 64, 2 KV heads, vocab 1000.
HIDDEN, MLP, LAYERS, VOCAB, KV = 256, 512, 2, 1000, 128
GROUP = 128
LINEARS = {  # name: (out, in)
    "self_attn.q_proj": (HIDDEN, HIDDEN),
    "self_attn.k_proj": (KV, HIDDEN),
    "self_attn.v_proj": (KV, HIDDEN),
    "self_attn.o_proj": (HIDDEN, HIDDEN),
    "mlp.gate_proj": (MLP, HIDDEN),
    "mlp.up_proj": (MLP, HIDDEN),
    "mlp.down_proj": (HIDDEN, MLP),
}
CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": HIDDEN,
    "intermediate_size": MLP,
    "num_hidden_layers": LAYERS,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": VOCAB,
    "max_position_embeddings": 4096,
    "torch_dtype": "bfloat16",
}
LINEAR_PARAMS = LAYERS * sum(o * i for o, i in LINEARS.values())
OTHER_PARAMS = 2 * VOCAB * HIDDEN + (2 * LAYERS + 1) * HIDDEN  # embed, LM head, norms
MLP_PARAMS = LAYERS * 3 * MLP * HIDDEN

Layer = Callable[[int, int], "dict[str, torch.Tensor]"]


def _bf16(out: int, inp: int) -> dict[str, torch.Tensor]:
    import torch

    return {"weight": torch.zeros(out, inp, dtype=torch.bfloat16)}


def _awq(out: int, inp: int) -> dict[str, torch.Tensor]:
    """AutoAWQ's WQLinear_GEMM: packed along the output dimension."""
    import torch

    return {
        "qweight": torch.zeros(inp, out // 8, dtype=torch.int32),
        "qzeros": torch.zeros(inp // GROUP, out // 8, dtype=torch.int32),
        "scales": torch.zeros(inp // GROUP, out, dtype=torch.float16),
    }


def _gptq(out: int, inp: int) -> dict[str, torch.Tensor]:
    """AutoGPTQ's QuantLinear: packed along the input dimension, with the act-order index."""
    import torch

    return {
        "qweight": torch.zeros(inp // 8, out, dtype=torch.int32),
        "qzeros": torch.zeros(inp // GROUP, out // 8, dtype=torch.int32),
        "scales": torch.zeros(inp // GROUP, out, dtype=torch.float16),
        "g_idx": torch.zeros(inp, dtype=torch.int32),
    }


def _pack_quantized(out: int, inp: int) -> dict[str, torch.Tensor]:
    """compressed-tensors W4A16 (`pack-quantized`), as llm-compressor writes it."""
    import torch

    return {
        "weight_packed": torch.zeros(out, inp // 8, dtype=torch.int32),
        "weight_scale": torch.zeros(out, inp // GROUP, dtype=torch.bfloat16),
        "weight_shape": torch.tensor([out, inp], dtype=torch.int64),
    }


def _float8(out: int, inp: int) -> dict[str, torch.Tensor]:
    """FP8 with a per-channel scale (compressed-tensors FP8-dynamic, fbgemm_fp8)."""
    import torch

    return {
        "weight": torch.zeros(out, inp, dtype=torch.float8_e4m3fn),
        "weight_scale": torch.zeros(out, 1, dtype=torch.float32),
    }


def _checkpoint(
    directory: Path, layer: Layer, quantization: dict[str, Any] | None, only_mlp: bool = False
) -> Path:
    """A Llama checkpoint whose linear layers are `layer`; with `only_mlp` the attention stays
    bf16 (Meta's FP8 405B). Embeddings, norms and the LM head stay 16-bit, as in every format."""
    import torch
    from safetensors.torch import save_file

    directory.mkdir()
    tensors = {
        "model.embed_tokens.weight": torch.zeros(VOCAB, HIDDEN, dtype=torch.bfloat16),
        "model.norm.weight": torch.zeros(HIDDEN, dtype=torch.bfloat16),
        "lm_head.weight": torch.zeros(VOCAB, HIDDEN, dtype=torch.bfloat16),
    }
    for index in range(LAYERS):
        prefix = f"model.layers.{index}."
        for norm in ("input_layernorm", "post_attention_layernorm"):
            tensors[f"{prefix}{norm}.weight"] = torch.zeros(HIDDEN, dtype=torch.bfloat16)
        for name, (out, inp) in LINEARS.items():
            make = _bf16 if only_mlp and name.startswith("self_attn") else layer
            for suffix, tensor in make(out, inp).items():
                tensors[f"{prefix}{name}.{suffix}"] = tensor
    half = len(tensors) // 2  # two shards, as real checkpoints come
    names = sorted(tensors)
    save_file({k: tensors[k] for k in names[:half]}, directory / "model-00001-of-00002.safetensors")
    save_file({k: tensors[k] for k in names[half:]}, directory / "model-00002-of-00002.safetensors")
    config = dict(CONFIG, quantization_config=quantization) if quantization else CONFIG
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def _compressed(fmt: str, kind: str, bits: int) -> dict[str, Any]:
    weights = {"num_bits": bits, "type": kind, "symmetric": True, "strategy": "group"}
    return {
        "quant_method": "compressed-tensors",
        "format": fmt,
        "config_groups": {"group_0": {"targets": ["Linear"], "weights": weights}},
        "ignore": ["lm_head"],
    }


FORMATS: dict[str, tuple[Layer, dict[str, Any], str, int]] = {
    # format: (layer, quantization_config, the plan's width, parameters left 16-bit)
    "awq": (
        _awq,
        {"quant_method": "awq", "bits": 4, "group_size": GROUP, "version": "gemm"},
        "int4",
        OTHER_PARAMS,
    ),
    "gptq": (
        _gptq,
        {"quant_method": "gptq", "bits": 4, "group_size": GROUP, "desc_act": True},
        "int4",
        OTHER_PARAMS,
    ),
    "compressed-tensors pack-quantized": (
        _pack_quantized,
        _compressed("pack-quantized", "int", 4),
        "int4",
        OTHER_PARAMS,
    ),
    "compressed-tensors float-quantized": (
        _float8,
        _compressed("float-quantized", "float", 8),
        "fp8",
        OTHER_PARAMS,
    ),
    "fbgemm_fp8": (
        _float8,
        {"quant_method": "fbgemm_fp8", "activation_scale_ub": 1200.0},
        "fp8",
        OTHER_PARAMS + LINEAR_PARAMS - MLP_PARAMS,
    ),
}


@pytest.fixture
def bf16_info(tmp_path: Path) -> Any:
    return modelinfo.read(str(_checkpoint(tmp_path / "bf16", _bf16, None)))


def test_the_bf16_checkpoint_counts_every_element(bf16_info: Any) -> None:
    assert bf16_info.params_b * 1e9 == pytest.approx(LINEAR_PARAMS + OTHER_PARAMS)
    assert (bf16_info.weights, bf16_info.unquantized_b) == ("bf16", 0.0)
    assert plan.weights_gib(bf16_info) == pytest.approx(
        (LINEAR_PARAMS + OTHER_PARAMS) * 2 / plan.GIB
    )


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_a_quantized_checkpoint_counts_the_same_parameters_as_bf16(
    fmt: str, bf16_info: Any, tmp_path: Path
) -> None:
    layer, quantization, width, unquantized = FORMATS[fmt]
    info = modelinfo.read(
        str(_checkpoint(tmp_path / "q", layer, quantization, only_mlp=fmt == "fbgemm_fp8"))
    )
    assert info.params_b == pytest.approx(bf16_info.params_b, abs=1e-12)
    assert info.weights == width
    assert info.unquantized_b * 1e9 == pytest.approx(unquantized)
    quantized = LINEAR_PARAMS + OTHER_PARAMS - unquantized
    assert plan.weights_gib(info) == pytest.approx(
        (quantized * plan.BYTES[width] + unquantized * 2.0) / plan.GIB
    )
    assert plan.weights_gib(info) < plan.weights_gib(bf16_info)


def test_one_awq_4096_square_layer_counts_16_8_million_parameters(tmp_path: Path) -> None:
    """The issue's example: counting int32 elements gave 2.24 M."""
    from safetensors.torch import save_file

    directory = tmp_path / "awq"
    directory.mkdir()
    tensors = {f"layer.{k}": v for k, v in _awq(4096, 4096).items()}
    save_file(tensors, directory / "model.safetensors")
    config = dict(CONFIG, quantization_config=FORMATS["awq"][1])
    (directory / "config.json").write_text(json.dumps(config))
    info = modelinfo.read(str(directory))
    assert info.params_b * 1e9 == 4096 * 4096 == 16_777_216
    assert info.unquantized_b == 0.0


@pytest.mark.parametrize(
    ("quantization", "named"),
    [
        ({"quant_method": "bitsandbytes", "load_in_4bit": True}, "bitsandbytes"),
        ({"quant_method": "gptq", "bits": 8}, "gptq 8-bit"),
        (_compressed("int-quantized", "int", 8), "compressed-tensors int-quantized"),
    ],
)
def test_an_unknown_quantization_is_refused_in_one_sentence(
    quantization: dict[str, Any], named: str, tmp_path: Path
) -> None:
    directory = _checkpoint(tmp_path / "q", _bf16, quantization)
    with pytest.raises(ToolkitError) as refused:
        modelinfo.read(str(directory))
    assert str(refused.value) == (
        f"the checkpoint's quantization ({named}) is not one the plan knows (awq, gptq "
        "(4-bit), compressed-tensors (4-bit pack-quantized or 8-bit float-quantized), "
        "fbgemm_fp8 and fp8); give the plan an info: block in the config instead."
    )
