"""Every rendered vLLM command passes vLLM's own start-time model checks, run on config twins.

A twin (configs/twins/) is a checkpoint's published config.json, or Mistral's params.json, without
the weights. scripts/vllm_twin_check.py puts it in place of the model reference and runs, with
the pinned vLLM 0.33.0 in .venv-vllm (scripts/make-vllm-parser-venv.sh, `make vllm-parser`):
EngineArgs.create_model_config() (architecture, quantization method against the checkpoint's
quantization_config and vLLM's deprecations, max-model-len against the positions, dtype, Mistral's
config format), ModelConfig.verify_with_parallel_config() (heads and layers over the tensor- and
pipeline-parallel sizes) and EngineArgs.create_load_config() (the load format).

Not run here, because they need CUDA or the weights: the quantization kernels a GPU picks (awq and
gptq become awq_marlin and gptq_marlin only on a GPU, so on this CPU the GPTQ config reports
auto_gptq), the memory profile and KV-cache size, CUDA graphs, the weights' shapes, and the
tokenizer (skipped with --skip-tokenizer-init). `toolkit plan` covers memory; only a GPU host
shows the rest. NVLM-D-72B stops earlier, at vLLM's inspection of its model class, which imports
torchvision: PyPI's torchvision is a CUDA build that does not load beside the CPU torch
(`operator torchvision::nms does not exist`), so that config is pinned to that known refusal.

In CI a missing venv fails these tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit.catalog.configs import Catalog, Config
from toolkit.paths import REPO_ROOT
from toolkit.service.server import server_command

VENV = Path(os.environ.get("VLLM_PARSER_VENV", REPO_ROOT / ".venv-vllm"))
CHECK = REPO_ROOT / "scripts/vllm_twin_check.py"
TWINS = REPO_ROOT / "configs/twins"
# Configs whose check cannot get past a CPU-only step, with the refusal that shows where it stops.
CPU_LIMITS = {
    "nvlm-70b_4": "vLLM refuses nvidia/NVLM-D-72B: Model architectures ['NVLM_D'] failed to be "
    "inspected. Please check the logs for more details.",
}
DEPRECATED_FBGEMM = (
    "vLLM refuses meta-llama/Llama-3.1-405B-Instruct-FP8: The quantization method fbgemm_fp8 is "
    "deprecated and will be removed in future versions of vLLM. To bypass, set "
    "`--allow-deprecated-quantization`."
)

CATALOG = Catalog.load()
# The checkpoints on Hugging Face; the CPU demo's tiny local model runs for real instead
# (tests/engine/test_vllm.py).
VLLM_CONFIGS = [(n, c) for n, c in CATALOG.items() if c.backend == "vllm" and c.source.hf]


def twin_path(config: Config) -> Path:
    stem = (config.source.hf or "").replace("/", "--")
    directory = TWINS / stem
    return directory if directory.is_dir() else TWINS / f"{stem}.json"


@pytest.fixture(scope="module")
def vllm_python() -> Path:
    python = VENV / "bin/python"
    if not python.exists():
        message = f"vLLM's venv {VENV} is missing; run make vllm-parser"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return python


def run_check(python: Path, config: Config, command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), str(CHECK), "--twin", str(twin_path(config)), "--", *command],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "VLLM_TARGET_DEVICE": "cpu"},
        timeout=300,
    )


@pytest.mark.parametrize(("name", "config"), VLLM_CONFIGS, ids=[n for n, _ in VLLM_CONFIGS])
def test_vllm_accepts_the_rendered_command_on_its_twin(
    vllm_python: Path, name: str, config: Config
) -> None:
    result = run_check(vllm_python, config, server_command(config, CATALOG.backend(config)))
    last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr
    if name in CPU_LIMITS:
        assert (result.returncode, last) == (1, CPU_LIMITS[name])
        return
    assert result.returncode == 0, last
    assert last.startswith(f"ok: {config.source.hf} ")
    assert f" tp={config.gpus} " in last + " "
    max_len = config.engine_args.get("max-model-len")
    assert f" max_model_len={max_len} " in last


def test_vllm_refuses_the_405b_fp8_without_the_deprecation_flag(vllm_python: Path) -> None:
    """Meta's FP8 checkpoint declares fbgemm_fp8: without the flag vLLM 0.33 will not start it."""
    config = CATALOG["llama3.1-405b_8"]
    command = server_command(config, CATALOG.backend(config))
    unfixed = [arg for arg in command if arg != "--allow-deprecated-quantization"]
    assert unfixed != command
    result = run_check(vllm_python, config, unfixed)
    assert (result.returncode, result.stdout.strip().splitlines()[-1]) == (1, DEPRECATED_FBGEMM)


def test_every_vllm_config_has_a_twin_and_every_twin_a_config() -> None:
    wanted = {twin_path(c) for _, c in VLLM_CONFIGS}
    assert sorted(p for p in wanted if not p.exists()) == []
    kept = {p for p in TWINS.iterdir() if p.suffix == ".json" or p.is_dir()}
    assert sorted(kept - wanted) == []


def test_the_catalog_does_not_read_the_twins_as_configs() -> None:
    assert TWINS.is_dir()
    assert not {p.stem for p in TWINS.iterdir()} & set(CATALOG)


def test_the_check_prints_usage_without_the_separator() -> None:
    result = subprocess.run(
        [sys.executable, str(CHECK), "--twin", "x.json"], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "usage: vllm_twin_check.py --twin TWIN.json [--tokenizer-dir DIR] -- ARGS"
    )
