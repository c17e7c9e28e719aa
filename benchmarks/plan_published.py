"""The plan's figures for today's models beside the ones their authors publish: the Markdown
table "Today's models" of docs/plan.md (a test keeps the two the same).

Each checkpoint is its published config.json and a safetensors header with the published tensor
shapes (tests/published.py), read as `toolkit plan --model DIR` reads a model folder.

    python benchmarks/plan_published.py
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import published  # noqa: E402
from toolkit.plan import facts  # noqa: E402
from toolkit.plan import memory as plan  # noqa: E402

GIB = plan.GIB
HEAD = "| model, figure | published | `toolkit plan` | error |\n| --- | --- | --- | --- |\n"


def _row(what: str, source: str, shown: str, ours: float, theirs: float, unit: str) -> str:
    error = (ours - theirs) / theirs * 100
    return f"| {what} | {shown} ({source}) | {ours:.2f} {unit} | {error:+.1f} % |\n"


def _kv(what: str, factors: tuple[int, ...], info: facts.ModelInfo, tp: int = 1) -> str:
    """The plan's KV bytes a token against the product of the published config's numbers."""
    expected = math.prod(factors)
    shown = f"{expected / 1024:.2f} KiB = {' x '.join(map(str, factors))} B"
    ours = plan.kv_bytes_per_token(info, tp)
    return _row(what, "config.json", shown, ours / 1024, expected / 1024, "KiB")


def table() -> str:
    rows = {row.repo: row for row in published.ROWS}
    with tempfile.TemporaryDirectory() as scratch:
        read = {
            repo: facts.local_checkpoint(published.checkpoint_dir(Path(scratch), row))
            for repo, row in rows.items()
        }
    oss, qwen_moe = read["openai/gpt-oss-120b"].info, read["Qwen/Qwen3-30B-A3B"].info
    deepseek, qwen_fp8 = read["deepseek-ai/DeepSeek-V3"].info, read["Qwen/Qwen3-8B-FP8"].info
    assert oss.params_b and qwen_moe.params_b and deepseek.params_b and qwen_fp8.params_b
    lines = [
        _row(
            "gpt-oss-120b weights (MXFP4 experts, all 128 resident)",
            "model card, table 1",
            "60.8 GiB",
            plan.weights_gib(oss),
            60.8,
            "GiB",
        ),
        _kv("gpt-oss-120b KV cache a token in all 36 layers", (2, 36, 8, 64, 2), oss),
        _row(
            "Qwen3-30B-A3B weights (BF16, all 128 experts resident)",
            "model card: 30.5 B parameters",
            f"{30.5e9 * 2 / GIB:.2f} GiB",
            plan.weights_gib(qwen_moe),
            30.5e9 * 2 / GIB,
            "GiB",
        ),
        _kv("Qwen3-30B-A3B KV cache a token", (2, 48, 4, 128, 2), qwen_moe),
        _row(
            "DeepSeek-V3 parameters vLLM loads (FP8 block 128x128)",
            "model card: 685 B less the 14 B multi-token-prediction module",
            "671 B",
            deepseek.params_b,
            671.0,
            "B",
        ),
        _kv(
            "DeepSeek-V3 KV cache a token (a latent of 512 + 64), on each of 8 GPUs",
            (61, 512 + 64, 2),
            deepseek,
            8,
        ),
        _row(
            "Qwen3-8B-FP8 weights (FP8 block 128x128)",
            "model card: 6.95 B not embeddings in FP8, 1.25 B in BF16",
            f"{(6.95e9 + 2 * 1.25e9) / GIB:.2f} GiB",
            plan.weights_gib(qwen_fp8),
            (6.95e9 + 2 * 1.25e9) / GIB,
            "GiB",
        ),
        _kv("Qwen3-8B-FP8 KV cache a token", (2, 36, 8, 128, 2), qwen_fp8),
    ]
    return HEAD + "".join(lines)


if __name__ == "__main__":
    print(table(), end="")
