"""Which architectures the pinned vLLM serves: configs/vllm-architectures.json, generated from
vLLM's own model registry by scripts/vllm_architectures.py (tests/test_add.py keeps its version
in step with the vLLM backend's image)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

from toolkit.paths import data_root

FILE = "vllm-architectures.json"


@dataclass(frozen=True)
class Supported:
    vllm: str  # the vLLM version the list came from
    text: frozenset[str]
    multimodal: frozenset[str]

    def serves(self, architecture: str) -> bool:
        return architecture in self.text or architecture in self.multimodal


@functools.cache
def supported() -> Supported:
    """The pinned vLLM's architectures (text generation and multimodal)."""
    data = json.loads((data_root() / "configs" / FILE).read_text(encoding="utf-8"))
    return Supported(data["vllm"], frozenset(data["text"]), frozenset(data["multimodal"]))
