"""The plan on today's models, against the figures their authors publish (docs/plan.md's table
"Today's models"). Each checkpoint is its published config.json and a safetensors header with
the published tensor names, dtypes and shapes (tests/published.py; no weights: the Hub cannot be
reached here), read as `toolkit plan --model` reads any model folder. The published figures are
rounded (30.5 B, 60.8 GiB), so each is matched within half its last digit, or 0.2 %."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests import published
from tests.conftest import Run, builtin_text
from toolkit.catalog.configs import Catalog
from toolkit.paths import REPO_ROOT
from toolkit.plan import facts
from toolkit.plan import memory as plan

ROWS = {row.repo: row for row in published.ROWS}
GIB = plan.GIB


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("published")
    return {repo: published.checkpoint_dir(root, row) for repo, row in ROWS.items()}


def _published_kv(config: dict[str, object], layers: int, per_layer: int) -> int:
    """Bytes a token's KV cache takes, from the published config's arithmetic: bf16 values."""
    assert config["num_hidden_layers"] == layers
    return layers * per_layer * 2


def test_gpt_oss_120b_mxfp4_moe(folders: dict[str, Path]) -> None:
    """OpenAI's model card, table 1: 116.83 B parameters, a checkpoint of 60.8 GiB (the MXFP4
    experts at 4.25 bits, the rest BF16); every one of the 128 experts is resident."""
    checkpoint = facts.local_checkpoint(folders["openai/gpt-oss-120b"])
    info = checkpoint.info
    assert info.params_b == pytest.approx(116.83, abs=0.005)
    assert (info.weights, checkpoint.experts, checkpoint.experts_per_token) == ("mxfp4", 128, 4)
    assert plan.weights_gib(info) == pytest.approx(60.8, abs=0.05)
    assert checkpoint.total_bytes / GIB == pytest.approx(plan.weights_gib(info), rel=0.002)
    config = published.config(ROWS["openai/gpt-oss-120b"])
    # 2 (K and V) x 8 KV heads x 64: every layer priced at full context, the 18 sliding ones too
    assert plan.kv_bytes_per_token(info, 1) == _published_kv(config, 36, 2 * 8 * 64) == 73728
    assert plan.kv_bytes_per_token(info, 8) == 73728 / 8, "one KV head per GPU"
    assert (info.max_position, checkpoint.rope) == (131072, "yarn"), "4096 x YaRN factor 32"
    assert (info.sliding_window, info.sliding_layers) == (128, 18), "layer_types alternates"


def test_sliding_window_layers_keep_only_their_window(folders: dict[str, Path]) -> None:
    """vLLM's hybrid KV cache manager gives a sliding-window layer the window less one plus a
    step's batched tokens, in 16-token blocks plus one (SlidingWindowSpec.max_memory_usage_bytes),
    so gpt-oss-120b's 131072 tokens take 18 full layers' and 18 windows' worth; OpenAI's model
    card says the model runs on one 80 GB GPU, and so does the plan, at its whole context."""
    info = facts.local_checkpoint(folders["openai/gpt-oss-120b"]).info
    per_layer = 2 * 8 * 64 * 2
    window = (-(-(128 - 1 + plan.BATCHED_TOKENS) // 16) + 1) * 16
    assert window == 8336
    assert plan.kv_bytes_needed(info, 1, 131072) == per_layer * (18 * 131072 + 18 * window)
    short = (7 + 1) * 16  # a context inside the window: its blocks, and the one extra
    assert plan.kv_bytes_needed(info, 1, 100) == per_layer * (18 * 100 + 18 * short)
    config = Catalog.load()["llama3-8b"]
    backend = Catalog.load().backend(config)
    whole = plan.plan(config, backend, 1, plan.DEFAULT_GPU_GIB, 131072, info)
    assert (whole.fits, whole.per_gpu.kv_needed_gib) == (True, 4.79)
    budget = 1.5 * GIB  # the longest context a KV cache holds is the inverse of the need
    held = plan.tokens_held(info, 1, budget)
    assert plan.kv_bytes_needed(info, 1, held) <= budget < plan.kv_bytes_needed(info, 1, held + 1)
    assert held > budget // plan.kv_bytes_per_token(info, 1), "more than at full price"
    unified = config.model_copy(
        update={"engine_args": {**config.engine_args, "disable-hybrid-kv-cache-manager": True}}
    )
    every = plan.plan(unified, backend, 1, plan.DEFAULT_GPU_GIB, 131072, info)
    assert (every.fits, every.per_gpu.kv_needed_gib) == (False, 9.0), "every token, every layer"
    tight = plan.plan(config, backend, 1, 75.0, 131072, info)
    assert tight.fits is False and 0 < tight.max_context_tokens < 131072


def test_qwen3_30b_a3b_bf16_moe(folders: dict[str, Path]) -> None:
    """Qwen's model card: 30.5 B in total (3.3 B activated), BF16."""
    checkpoint = facts.local_checkpoint(folders["Qwen/Qwen3-30B-A3B"])
    info = checkpoint.info
    assert info.params_b == pytest.approx(30.5, abs=0.05)
    assert plan.weights_gib(info) == pytest.approx(30.5e9 * 2 / GIB, rel=0.002)
    config = published.config(ROWS["Qwen/Qwen3-30B-A3B"])
    assert plan.kv_bytes_per_token(info, 1) == _published_kv(config, 48, 2 * 4 * 128) == 98304
    assert info.max_position == 40960


def test_deepseek_v3_latent_attention_fp8_block(folders: dict[str, Path]) -> None:
    """DeepSeek's model card: 685 B on the Hub, 671 B of them the main model, 14 B the
    multi-token-prediction module, which vLLM does not load unless asked. The KV cache is the
    latent of DeepSeek-V2's paper, (d_c + d_h^R) x layers values a token: (512 + 64) x 61."""
    checkpoint = facts.local_checkpoint(folders["deepseek-ai/DeepSeek-V3"])
    info = checkpoint.info
    assert sum(checkpoint.params_by_dtype.values()) / 1e9 == pytest.approx(685, abs=0.5)
    assert info.params_b == pytest.approx(671, abs=0.5)
    assert checkpoint.quantization == "fp8 block 128x128" and info.weights == "fp8"
    assert (info.kv_lora_rank, info.qk_rope_head_dim) == (512, 64)
    config = published.config(ROWS["deepseek-ai/DeepSeek-V3"])
    latent = _published_kv(config, 61, 512 + 64)
    assert plan.kv_bytes_per_token(info, 1) == plan.kv_bytes_per_token(info, 8) == latent == 70272
    keys_and_values = 61 * 128 * (192 + 128) * 2  # K of 128 + 64, V of 128, for 128 heads
    assert keys_and_values / latent == pytest.approx(71.1, abs=0.05)
    assert (info.max_position, checkpoint.rope) == (163840, "yarn"), "4096 x YaRN factor 40"


def test_qwen3_8b_fp8_block_dense(folders: dict[str, Path]) -> None:
    """Qwen3-8B's model card: 8.2 B, 6.95 B of them not embeddings; the FP8 checkpoint
    quantizes those and keeps the embeddings and LM head in BF16."""
    info = facts.local_checkpoint(folders["Qwen/Qwen3-8B-FP8"]).info
    assert info.params_b == pytest.approx(8.2, abs=0.05)
    assert info.params_b - info.unquantized_b == pytest.approx(6.95, abs=0.005)
    # 6.95 B in FP8 and 8.2 - 6.95 B in BF16; 8.2 is rounded to 0.05 B, 0.1 GB either way
    assert plan.weights_gib(info) == pytest.approx((6.95e9 + 2 * 1.25e9) / GIB, abs=0.1e9 / GIB)
    config = published.config(ROWS["Qwen/Qwen3-8B-FP8"])
    assert plan.kv_bytes_per_token(info, 1) == _published_kv(config, 36, 2 * 8 * 128) == 147456


def test_the_latent_cache_is_whole_on_every_gpu(run: Run, folders: dict[str, Path]) -> None:
    """At TP 8 each GPU holds an eighth of DeepSeek-V3's weights but the whole latent cache, so
    eight 80 GB cards cannot hold it and eight of 141 GB can (the plan, end to end)."""
    folder = str(folders["deepseek-ai/DeepSeek-V3"])
    small = run("plan", "llama3-8b", "--model", folder, "--gpu-count", "8")
    assert small.exit_code == 1
    assert small.stdout.splitlines()[-1].startswith(
        "DOES NOT FIT: the weights (78.3 GiB) and overheads (5.8 GiB) exceed the 71.3 GiB"
    )
    large = run("plan", "llama3-8b", "--model", folder, "--gpu-count", "8", "--gpu-memory", "141")
    result = json.loads(
        run(
            "plan",
            "llama3-8b",
            "--model",
            folder,
            "--gpu-count",
            "8",
            "--gpu-memory",
            "141",
            "--json",
        ).stdout
    )
    assert (large.exit_code, result["fits"]) == (0, True)
    assert result["per_gpu"]["kv_needed_gib"] == pytest.approx(8192 * 70272 / GIB, abs=0.01)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            "  sliding_window: 128\n",
            "field 'info.sliding_layers': a sliding-window KV cache needs both sliding_window "
            "and sliding_layers; add it from the model's config.json.",
        ),
        (
            "  sliding_window: 128\n  sliding_layers: 33\n",
            "field 'info.sliding_layers': 33 is more than the model's 32 layers; count the "
            "sliding_attention entries of its layer_types.",
        ),
    ],
)
def test_sliding_window_facts_are_checked(user_catalog, run: Run, lines: str, message: str) -> None:
    text = builtin_text("llama3-8b").replace("  params_b: 8.03\n", "  params_b: 8.03\n" + lines)
    directory = user_catalog("window.yaml", text)
    result = run("--catalog", str(directory), "plan", "window")
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {directory / 'window.yaml'}: {message}\n",
    )


def test_half_a_latent_is_refused_naming_what_is_missing(user_catalog, run: Run) -> None:
    latent = builtin_text("llama3-8b").replace(
        "  params_b: 8.03\n", "  params_b: 8.03\n  kv_lora_rank: 512\n"
    )
    directory = user_catalog("latent.yaml", latent)
    result = run("--catalog", str(directory), "plan", "latent")
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {directory / 'latent.yaml'}: field 'info.qk_rope_head_dim': a latent-attention "
        "KV cache needs both kv_lora_rank and qk_rope_head_dim; add it from the model's "
        "config.json.\n",
    )
    typo = latent.replace("kv_lora_rank: 512\n", "kv_lora_rank: 512\n  qk_rope: 64\n")
    (directory / "latent.yaml").write_text(typo, encoding="utf-8")
    result = run("--catalog", str(directory), "plan", "latent")
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "unknown key 'info.qk_rope'; allowed keys: params_b, layers, heads, kv_heads, head_dim, "
        "hidden, intermediate, vocab, max_position, kv_lora_rank, qk_rope_head_dim, "
        "sliding_window, sliding_layers, weights, unquantized_b, weights_gib.\n"
    )
    whole = typo.replace("qk_rope: 64", "qk_rope_head_dim: 64")
    (directory / "latent.yaml").write_text(whole, encoding="utf-8")
    info = Catalog.load(directory)["latent"].info
    assert info is not None and plan.kv_bytes_per_token(info, 4) == 32 * (512 + 64) * 2


def test_the_docs_table_is_the_scripts_output() -> None:
    """docs/plan.md quotes benchmarks/plan_published.py's table as it prints it today."""
    script = REPO_ROOT / "benchmarks" / "plan_published.py"
    table = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert table.count("\n") == 2 + len(ROWS) * 2
    assert table in (REPO_ROOT / "docs" / "plan.md").read_text(encoding="utf-8")


def test_add_writes_the_latent_and_its_config_plans_it(
    run: Run, folders: dict[str, Path], tmp_path: Path
) -> None:
    """`toolkit add` of DeepSeek-V3's folder keeps its config.json as the twin, which gives both
    latent facts and the YaRN context, and says so at the top of the file; the file, loaded by
    the strict catalog loader beside its twin, plans the latent cache, not K and V."""
    folder = folders["deepseek-ai/DeepSeek-V3"]
    result = run("add", str(folder), "--catalog", str(tmp_path), "--gpu-memory", "141")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "deepseek-ai--deepseek-v3_8.yaml").read_text(encoding="utf-8")
    assert (
        "# gives the plan 61 layers, a latent of 512 + 64 per token and layer, 163840 tokens "
        "with its yarn RoPE scaling.\n" in text
    )
    assert "kv_lora_rank" not in text and "max_position" not in text
    config = Catalog.load(tmp_path)["deepseek-ai--deepseek-v3_8"]
    assert config.info is not None
    assert plan.kv_bytes_per_token(config.info, 8) == 70272
