"""vLLM's own view of a run: `/metrics` (Prometheus text) read before and after each load level.

Only the difference between the two readings counts, so earlier traffic does not leak in. Means
come from a histogram's _sum/_count; percentiles are interpolated within the cumulative buckets,
as Prometheus' histogram_quantile does. Metric names from vLLM's docs (design/metrics).
"""

from __future__ import annotations

import math
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
}
_LINE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Samples = dict[tuple[str, str], float]  # (name, le) -> value summed over the model's series


def parse(text: str, model: str) -> Samples:
    """Sum every series of the served model (or with no model label) by (name, le)."""
    samples: Samples = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        name, labels_text, value = match.groups()
        labels = dict(_LABEL.findall(labels_text or ""))
        if labels.get("model_name", model) != model:
            continue
        key = (name, labels.get("le", ""))
        samples[key] = samples.get(key, 0.0) + float(value)
    return samples


def _quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """histogram_quantile over (upper bound, cumulative count) pairs, in the bound's unit."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 0.0)
        lower, below = bound, count
    return None


def difference(before: Samples, after: Samples) -> dict[str, Any] | None:
    """The server's figures for what happened between two readings; None without vLLM metrics."""
    if not any(name.startswith("vllm:") for name, _ in after):
        return None
    delta = {key: after[key] - before.get(key, 0.0) for key in after}
    out: dict[str, Any] = {}
    for key, name in COUNTERS.items():
        out[key] = round(delta.get((name, ""), 0.0))
    for key, name in HISTOGRAMS.items():
        count = delta.get((f"{name}_count", ""), 0.0)
        total = delta.get((f"{name}_sum", ""), 0.0)
        buckets = sorted(
            (float(le), value) for (n, le), value in delta.items() if n == f"{name}_bucket"
        )
        stats: dict[str, float | int | None] = {"count": int(count)}
        stats["mean"] = round(total / count * 1000, 3) if count else None
        for q in (50, 90, 99):
            value = _quantile(buckets, q / 100)
            stats[f"p{q}"] = round(value * 1000, 3) if value is not None else None
        out[key] = stats
    return out
