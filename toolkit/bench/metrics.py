"""vLLM's own view of a run: `/metrics` (Prometheus text) read before and after each load level.

Only the difference between the two readings counts, so earlier traffic does not leak in. Each
histogram gives its exact mean (_sum/_count). Percentiles are left out on purpose: interpolated
within vLLM's coarse buckets (the queue-time one starts at 300 ms) they would read as 150 ms for
requests that queued 0.01 ms. Metric names from vLLM's docs (design/metrics).
"""

from __future__ import annotations

import re
from typing import Any

HISTOGRAMS = {
    "ttft_ms": "vllm:time_to_first_token_seconds",
    "queue_ms": "vllm:request_queue_time_seconds",
    "itl_ms": "vllm:inter_token_latency_seconds",
    "e2e_ms": "vllm:e2e_request_latency_seconds",
}
COUNTERS = {
    "generation_tokens": "vllm:generation_tokens_total",
    "prompt_tokens": "vllm:prompt_tokens_total",
    # prompt tokens looked up in the prefix cache, and those found there (vLLM 0.32)
    "prefix_cache_queries": "vllm:prefix_cache_queries_total",
    "prefix_cache_hits": "vllm:prefix_cache_hits_total",
}
_LINE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Samples = dict[str, float]  # metric name -> value summed over the served model's series


def parse(text: str, model: str) -> Samples:
    """Sum every series of the served model (or with no model label) by name; skip buckets."""
    samples: Samples = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        name, labels_text, value = match.groups()
        if name.endswith("_bucket"):
            continue
        labels = dict(_LABEL.findall(labels_text or ""))
        if labels.get("model_name", model) != model:
            continue
        samples[name] = samples.get(name, 0.0) + float(value)
    return samples


def difference(before: Samples, after: Samples) -> dict[str, Any] | None:
    """The server's figures for what happened between two readings; None without vLLM metrics."""
    if not any(name.startswith("vllm:") for name in after):
        return None
    delta = {key: after[key] - before.get(key, 0.0) for key in after}
    out: dict[str, Any] = {}
    for key, name in COUNTERS.items():
        out[key] = round(delta.get(name, 0.0))
    queries = out["prefix_cache_queries"]
    out["prefix_cache_hit_rate"] = round(out["prefix_cache_hits"] / queries, 4) if queries else None
    for key, name in HISTOGRAMS.items():
        count = delta.get(f"{name}_count", 0.0)
        total = delta.get(f"{name}_sum", 0.0)
        out[key] = {"count": int(count), "mean": round(total / count * 1000, 3) if count else None}
    return out
