"""cache_aware against round_robin: the CPU vLLM (demo-vllm) as two replicas behind vllm-router.

For each arm (one replica; two with `round_robin`; two with `cache_aware`; two, with the load
sent to replica 1 at its own address, past the router) this starts demo-vllm
(built beforehand: `make demo` or `toolkit build demo-vllm`), runs `toolkit bench` through the
endpoint on a shared-prefix load (N system prompts of P tokens, M questions each, taking turns:
`--shared-prefix N:M`), reads every replica's own vLLM counters at its container address before
and after (`vllm:prefix_cache_queries_total` and `_hits_total`, the requests each served), then
stops it. It prints a table and, with --json, writes the figures. The demo's tiny tokenizer
splits each word of the synthetic prompt into about six tokens, so the default 64-word system
prompt is about 380 tokens, and the whole request 418 of the model's 512.

    PYTHONPATH=. .venv/bin/python benchmarks/replicas_prefix.py \
        [--model-dir .demo/models/tiny-llama] [--shared-prefix 64:3] [--prefix-tokens 64] \
        [--concurrency 8] [--requests 192] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from toolkit.bench import metrics
from toolkit.catalog import names
from toolkit.host.engine import connect
from toolkit.lifecycle.running import own_url
from toolkit.paths import REPO_ROOT

NAME = "demo-vllm"
MODEL = "Tiny-Llama"
ARMS = {  # name: (replicas, policy, bench replica 1 at its own address, past the router)
    "1 replica": (1, None, False),
    "2 x round_robin": (2, "round_robin", False),
    "2 x cache_aware": (2, "cache_aware", False),
    "2, replica 1 direct": (2, "round_robin", True),
}


def catalog_with(directory: Path, model_dir: Path) -> Path:
    """A user catalog holding demo-vllm with its model at model_dir."""
    text = (REPO_ROOT / "configs" / f"{NAME}.yaml").read_text(encoding="utf-8")
    local = next(line for line in text.splitlines() if line.strip().startswith("local:"))
    (directory / f"{NAME}.yaml").write_text(
        text.replace(local, f"  local: {model_dir.resolve()}"), encoding="utf-8"
    )
    return directory


def toolkit(catalog: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TOOLKIT_CATALOG": str(catalog)}
    return subprocess.run(
        [sys.executable, "-m", "toolkit", *args], env=env, text=True, capture_output=True
    )


def counters() -> dict[str, metrics.Samples]:
    """Each running replica's vLLM counters (or the single service's), read at its address."""
    read: dict[str, metrics.Samples] = {}
    for found in connect().containers(label=names.service_filter(NAME)):
        replica = found.labels.get(names.label("replica"), "1/1")
        text = httpx.get(own_url(found) + "/metrics", timeout=10).text
        read[replica] = metrics.parse(text, MODEL)
    return read


def served(before: metrics.Samples, after: metrics.Samples) -> dict[str, Any]:
    figures = metrics.difference(before, after) or {}
    requests = after.get("vllm:request_success_total", 0.0) - before.get(
        "vllm:request_success_total", 0.0
    )
    return {
        "requests": round(requests),
        "prefix_cache_queries": figures.get("prefix_cache_queries"),
        "prefix_cache_hits": figures.get("prefix_cache_hits"),
    }


def replica_url(number: int) -> str:
    label = [*names.service_filter(NAME), f"{names.label('replica')}={number}/2"]
    (found,) = connect().containers(label=label)
    return own_url(found)


def run_arm(
    catalog: Path, replicas: int, policy: str | None, direct: bool, args: argparse.Namespace
) -> Any:
    start = ["start", NAME, "--port", str(args.port), "--replicas", str(replicas)]
    if policy:
        start += ["--policy", policy]
    started = toolkit(catalog, *start)
    if started.returncode != 0:
        raise SystemExit(f"toolkit start failed ({started.returncode}):\n{started.stderr}")
    try:
        before = counters()
        target = [NAME]
        if direct:
            target = ["--url", replica_url(1), "--protocol", "openai-text", "--model", MODEL]
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            bench = toolkit(
                catalog, "bench", *target, "--shared-prefix", args.shared_prefix,
                "--prefix-tokens", str(args.prefix_tokens), "--prompt-tokens", "8",
                "--output-tokens", "8", "--ignore-eos", "--concurrency", str(args.concurrency),
                "--requests", str(args.requests), "--warmup", "0", "--json", out.name,
            )  # fmt: skip
            if bench.returncode != 0:
                raise SystemExit(f"toolkit bench failed ({bench.returncode}):\n{bench.stderr}")
            (level,) = json.loads(Path(out.name).read_text())["levels"]
        after = counters()
    finally:
        toolkit(catalog, "stop", NAME)
    per_replica = {key: served(before[key], after[key]) for key in sorted(after)}
    queries = sum(r["prefix_cache_queries"] or 0 for r in per_replica.values())
    hits = sum(r["prefix_cache_hits"] or 0 for r in per_replica.values())
    return {
        "replicas": replicas,
        "policy": policy,
        "direct": direct,
        "per_replica": per_replica,
        "prefix_cache_hit_rate": round(hits / queries, 4) if queries else None,
        "requests_per_s": level["requests_per_s"],
        "output_tokens_per_s": level["output_tokens_per_s"],
        "ttft_p50_ms": (level["ttft_ms"] or {}).get("p50"),
        "e2e_p50_ms": (level["e2e_ms"] or {}).get("p50"),
        "failed": level["failed"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / ".demo/models/tiny-llama")
    parser.add_argument("--port", type=int, default=4042)
    parser.add_argument("--shared-prefix", default="64:3")
    parser.add_argument("--prefix-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=192)
    parser.add_argument("--json", dest="json_file", type=Path)
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory(prefix="replicas-prefix-") as directory:
        catalog = catalog_with(Path(directory), args.model_dir)
        for arm, (replicas, policy, direct) in ARMS.items():
            rows[arm] = run_arm(catalog, replicas, policy, direct, args)
    print(f"{'arm':<18}{'hit rate':>9}{'req/s':>8}{'tok/s':>8}{'TTFT p50':>10}  requests each")
    for arm, row in rows.items():
        rate = row["prefix_cache_hit_rate"]
        each = " ".join(str(r["requests"]) for r in row["per_replica"].values())
        print(
            f"{arm:<18}{rate if rate is not None else '-':>9}{row['requests_per_s']:>8.2f}"
            f"{row['output_tokens_per_s']:>8.1f}{row['ttft_p50_ms'] or 0:>10.1f}  {each}"
        )
    if args.json_file:
        args.json_file.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
