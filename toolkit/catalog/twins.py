"""Config twins: the checkpoint's published config.json kept beside a config, and what it says.

A twin lies in `twins/<owner>--<name>.json` beside the config's file (a folder of that name for a
checkpoint that ships its configuration code, holding config.json), as configs/twins/ holds them
and `toolkit add` writes them. Its shape facts (layers, heads, KV heads, head dimension, hidden
and MLP sizes, vocabulary, the context its RoPE scaling gives, latent attention, sliding windows)
are the plan's, so a config's `info:` keeps only what a config.json cannot say. Mistral's
`params.json` names the same facts its own way and states no context. This module reads plain
dicts, so the catalog (configs.py) and the plan's checkpoint reader (toolkit/plan/facts.py) share
one reading.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from toolkit.paths import data_root

FOLDER = "twins"
# Models whose attention vLLM runs as multi-head latent attention, caching one latent per token
# and layer (ModelConfig.is_deepseek_mla); MiniCPM3 also has kv_lora_rank but caches K and V.
MLA_MODEL_TYPES = (
    "deepseek_v2",
    "deepseek_v3",
    "deepseek_v32",
    "kimi_k2",
    "kimi_linear",
    "longcat_flash",
    "pangu_ultra_moe",
)
# RoPE types whose max_position_embeddings is already the scaled context (vLLM's
# _get_and_verify_max_len); every other type's `factor` stretches it.
SCALED_ROPE = ("su", "longrope", "llama3")
# Mistral's params.json -> config.json (vLLM's adapt_config_from_mistral)
MISTRAL_NAMES = {
    "n_layers": "num_hidden_layers",
    "n_heads": "num_attention_heads",
    "n_kv_heads": "num_key_value_heads",
    "head_dim": "head_dim",
    "dim": "hidden_size",
    "hidden_dim": "intermediate_size",
    "vocab_size": "vocab_size",
}


def stem(source: Mapping[str, Any]) -> str:
    """The twin's name for a source (a config file's raw `source:` or a Source's dump):
    <owner>--<name> of a repo, a local folder's own name; empty for an Ollama tag."""
    if source.get("local"):
        return Path(str(source["local"])).name
    return str(source.get("hf") or source.get("modelscope") or "").replace("/", "--")


def twin_path(config_dir: Path, source: Any) -> Path | None:
    """The twin for this source, a folder or a .json file: in config_dir/twins/, else among the
    shipped ones (configs/twins/), so a user's config of a shipped checkpoint has its twin."""
    name = stem(source) if isinstance(source, Mapping) else ""
    for folder in dict.fromkeys((config_dir / FOLDER, data_root() / "configs" / FOLDER)):
        for candidate in (folder / name, folder / f"{name}.json"):
            if name and candidate.exists():
                return candidate
    return None


def read(twin: Path) -> dict[str, Any]:
    """The twin's JSON object (a folder's config.json); OSError or ValueError when it is none."""
    path = twin / "config.json" if twin.is_dir() else twin
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def facts(config: dict[str, Any]) -> dict[str, Any]:
    """The ModelInfo keys a config.json (or params.json) states, and only those."""
    if "n_layers" in config and "dim" in config:  # Mistral's format
        config = {MISTRAL_NAMES[k]: v for k, v in config.items() if k in MISTRAL_NAMES}
    text = config.get("text_config") or config.get("llm_config") or config
    found: dict[str, Any] = {
        "layers": text.get("num_hidden_layers"),
        "heads": text.get("num_attention_heads"),
        "hidden": text.get("hidden_size"),
        # Falcon names its MLP ffn_hidden_size
        "intermediate": text.get("intermediate_size") or text.get("ffn_hidden_size"),
        "vocab": text.get("vocab_size"),
        "max_position": context(config, text)[0],
    }
    if text.get("num_attention_heads") and text.get("hidden_size"):
        found |= attention(config, text)
    return {key: value for key, value in found.items() if value is not None}


def attention(config: dict[str, Any], text: dict[str, Any]) -> dict[str, Any]:
    """The KV cache's shape: KV heads and head dimension, for latent attention the latent's
    width and the RoPE key's, as vLLM reads them (ModelConfig.get_head_size), and the window
    and count of the sliding-window layers that config.json's layer_types names."""
    heads = text["num_attention_heads"]
    rope, nope = text.get("qk_rope_head_dim"), text.get("qk_nope_head_dim")
    facts: dict[str, Any] = {
        # Falcon's new decoder names them num_kv_heads
        "kv_heads": text.get("num_key_value_heads") or text.get("num_kv_heads") or heads,
        "head_dim": text.get("head_dim")
        or (rope + nope if rope and nope else None)
        or text["hidden_size"] // heads,
    }
    model_type = text.get("model_type") or config.get("model_type")
    if model_type in MLA_MODEL_TYPES and text.get("kv_lora_rank") and rope:
        facts |= {"kv_lora_rank": text["kv_lora_rank"], "qk_rope_head_dim": rope}
    kinds, window = text.get("layer_types"), text.get("sliding_window")
    sliding = kinds.count("sliding_attention") if isinstance(kinds, list) else 0
    if sliding and window:  # gpt-oss, Gemma 3: which layers attend within the window
        facts |= {"sliding_window": window, "sliding_layers": sliding}
    return facts


def context(config: dict[str, Any], text: dict[str, Any]) -> tuple[int | None, str | None]:
    """The longest context vLLM derives from the config (_get_and_verify_max_len), and the RoPE
    scaling type: a factor stretches max_position_embeddings, YaRN's its
    original_max_position_embeddings (transformers' default for it: max_position_embeddings);
    Llama 3, LongRoPE and Gemma 3 give the scaled context already."""
    longest = text.get("max_position_embeddings")
    scaling = text.get("rope_scaling") or text.get("rope_parameters") or {}
    rope = scaling.get("rope_type") or scaling.get("type") if isinstance(scaling, dict) else None
    factor = scaling.get("factor") if isinstance(scaling, dict) else None
    gemma3 = "gemma3" in str(config.get("model_type") or text.get("model_type") or "")
    if longest and rope and rope not in SCALED_ROPE and factor and not gemma3:
        if rope == "yarn":
            longest = scaling.get("original_max_position_embeddings") or longest
        longest = int(longest * factor)
    return longest, rope if rope and rope != "default" else None
