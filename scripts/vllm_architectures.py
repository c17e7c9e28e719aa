"""Write configs/vllm-architectures.json: the architectures the pinned vLLM serves, from vLLM itself.

Run with the vLLM environment's Python (the one tests/test_vllm_twins.py uses):
    .venv-vllm/bin/python scripts/vllm_architectures.py
`toolkit add` reads the file (toolkit/plan/architectures.py) to choose vLLM or to say it cannot
serve a checkpoint; tests/test_add.py checks it names the pinned version.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import vllm
from vllm.model_executor.models import registry

OUT = Path(__file__).resolve().parent.parent / "configs" / "vllm-architectures.json"


def main() -> int:
    data = {
        "_generated": "by scripts/vllm_architectures.py from vLLM's model registry; do not edit",
        "vllm": vllm.__version__,
        # Text generation, and the multimodal models that generate text (vision-language).
        "text": sorted(registry._TEXT_GENERATION_MODELS),
        "multimodal": sorted(registry._MULTIMODAL_MODELS),
    }
    OUT.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(data['text'])} text, {len(data['multimodal'])} multimodal)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
