"""Model facts for the plan, read from the weights themselves: a local model directory (config.json
and the safetensors headers) or a Hugging Face repo (config.json and the safetensors metadata,
through huggingface_hub, which honours HF_HUB_OFFLINE and HF_ENDPOINT).
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

from toolkit.catalog import ModelInfo
from toolkit.errors import ToolkitError

DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "bf16"}
QUANTIZED = {"awq": "int4", "gptq": "int4", "fp8": "fp8", "compressed-tensors": "fp8"}


def read(model: str, revision: str | None = None) -> ModelInfo:
    """Facts of a local directory, or else of a Hugging Face repo id."""
    path = Path(model)
    if path.is_dir():
        config = _json(path / "config.json")
        params = sum(_safetensors_params(f) for f in sorted(path.glob("*.safetensors")))
    else:
        config, params = _from_hub(model, revision)
    if not params:
        raise ToolkitError(
            f"{model} holds no safetensors weights to count; give the plan an "
            "info: block in the config instead."
        )
    return from_config(config, params)


def from_config(config: dict[str, Any], params: int) -> ModelInfo:
    """ModelInfo from a transformers config.json (the text model's, for vision-language ones)."""
    text = config.get("text_config") or config.get("llm_config") or config
    heads = text["num_attention_heads"]
    hidden = text["hidden_size"]
    quant = (config.get("quantization_config") or {}).get("quant_method")
    dtype = config.get("torch_dtype") or config.get("dtype") or text.get("torch_dtype")
    weights = QUANTIZED.get(quant, "") if quant else DTYPES.get(str(dtype), "bf16")
    return ModelInfo.model_validate(
        {
            "params_b": params / 1e9,
            "layers": text["num_hidden_layers"],
            "kv_heads": text.get("num_key_value_heads") or heads,
            "head_dim": text.get("head_dim") or hidden // heads,
            "hidden": hidden,
            "intermediate": text.get("intermediate_size"),
            "vocab": text.get("vocab_size"),
            "max_position": text.get("max_position_embeddings"),
            "weights": weights or "bf16",
        }
    )


def _json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ToolkitError(
            f"cannot read {path} ({exc}); point --model at a model directory with a config.json."
        ) from None
    return data


def _safetensors_params(path: Path) -> int:
    """Parameters in one safetensors file, from its JSON header alone (no tensor is read)."""
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header: dict[str, Any] = json.loads(handle.read(length))
    return sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")


def _from_hub(repo: str, revision: str | None) -> tuple[dict[str, Any], int]:
    try:
        from huggingface_hub import get_safetensors_metadata, hf_hub_download

        config = json.loads(
            Path(hf_hub_download(repo, "config.json", revision=revision)).read_text(
                encoding="utf-8"
            )
        )
        metadata = get_safetensors_metadata(repo, revision=revision)
    except ImportError:
        raise ToolkitError(
            "reading a Hugging Face repo needs huggingface_hub; pip install "
            "huggingface_hub, or point --model at a local directory."
        ) from None
    except Exception as exc:
        raise ToolkitError(
            f"cannot read {repo} from the Hugging Face Hub "
            f"({type(exc).__name__}); check the name and the network (or "
            "HF_HUB_OFFLINE), or point --model at a local directory."
        ) from None
    return config, int(sum(metadata.parameter_count.values()))
