"""Which architectures the pinned vLLM serves: the `architectures` of configs/vllm-facts.json,
generated from vLLM's own model registry by scripts/make-vllm-facts.py (tests/test_vllm_args.py
regenerates it and compares)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

from toolkit.paths import data_root

FILE = "vllm-facts.json"


@dataclass(frozen=True)
class Supported:
    vllm: str  # the vLLM version the list came from
    text: frozenset[str]
    multimodal: frozenset[str]

    def serves(self, architecture: str) -> bool:
        return architecture in self.text or architecture in self.multimodal


@functools.cache
def supported() -> Supported:
    """The pinned vLLM's architectures that generate text (text generation and multimodal)."""
    data = json.loads((data_root() / "configs" / FILE).read_text(encoding="utf-8"))
    groups = data["architectures"]
    return Supported(
        data["version"], frozenset(groups["text_generation"]), frozenset(groups["multimodal"])
    )
