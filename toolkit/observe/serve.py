"""`toolkit metrics --serve PORT`: every service's figures as one Prometheus endpoint.

Each scrape of the endpoint reads every running toolkit service afresh (toolkit.observe.metrics) and
keeps the scrapes of the last two minutes in memory, so the percentiles and rates cover the
last minute once the endpoint has been scraped for that long (Prometheus' default interval is
15 s). Figures are gauges labelled by config (and gpu or model); quantiles carry a `quantile`
label, as a Prometheus summary's do.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from toolkit.errors import ToolkitError
from toolkit.host.engine import connect
from toolkit.observe import metrics

PREFIX = "toolkit_"
SCALARS = {
    "requests_running": "Requests the server is running now.",
    "requests_waiting": "Requests waiting in the server's queue.",
    "kv_cache_usage": "Fraction of the KV cache in use (0 to 1).",
    "generation_tokens_per_s": "Tokens generated per second over the window.",
    "prompt_tokens_per_s": "Prompt tokens processed per second over the window.",
    "window_s": "Seconds the percentiles and rates cover.",
    "restarts": "Restarts of the service (by Docker and by the watchdog).",
}
QUANTILES = {
    "ttft_s": ("ttft_seconds", "Time to first token over the window, by quantile."),
    "itl_s": ("itl_seconds", "Inter-token latency over the window, by quantile."),
}
GPU = {
    "memory_used_gib": ("gpu_memory_used_bytes", 2**30, "GPU memory in use."),
    "memory_total_gib": ("gpu_memory_total_bytes", 2**30, "GPU memory in all."),
    "utilization_percent": ("gpu_utilization_ratio", 0.01, "GPU busy fraction (0 to 1)."),
    "power_watts": ("gpu_power_watts", 1, "GPU power draw."),
}


class ServiceCollector(Collector):
    """Reads every running toolkit service at each scrape of the endpoint."""

    def __init__(self) -> None:
        self.reader = metrics.Reader()
        self.lock = threading.Lock()  # one scrape at a time: they share the history

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.lock:
            rows = self.reader.figures(connect(), None, first_wait=0)
        yield from families(rows)


def _unit(row: dict[str, Any]) -> list[str]:
    return [str(row["config"]), str(row.get("replica") or "")]


def families(rows: list[dict[str, Any]]) -> Iterator[GaugeMetricFamily]:
    """The figures of `toolkit metrics --json` as Prometheus gauge families."""
    # `replica`: which of a config's replicas behind the router ("1/2"), empty for one server.
    up = GaugeMetricFamily(
        PREFIX + "up", "1 when the service is healthy.", labels=["config", "replica"]
    )
    for row in rows:
        up.add_metric(_unit(row), 1.0 if row["health"] == "healthy" else 0.0)
    yield up
    for key, text in SCALARS.items():
        family = GaugeMetricFamily(PREFIX + key, text, labels=["config", "replica"])
        for row in rows:
            if row.get(key) is not None:
                family.add_metric(_unit(row), float(row[key]))
        yield family
    for key, (name, text) in QUANTILES.items():
        family = GaugeMetricFamily(PREFIX + name, text, labels=["config", "replica", "quantile"])
        for row in rows:
            for q, value in (row.get(key) or {}).items():
                if value is not None:
                    family.add_metric([*_unit(row), str(int(q[1:]) / 100)], float(value))
        yield family
    for key, (name, scale, text) in GPU.items():
        family = GaugeMetricFamily(PREFIX + name, text, labels=["config", "gpu"])
        for row in rows:
            for gpu in row["gpus"] if isinstance(row["gpus"], list) else []:
                if gpu[key] is not None:
                    family.add_metric([row["config"], gpu["index"]], gpu[key] * scale)
        yield family
    loaded = GaugeMetricFamily(
        PREFIX + "model_memory_bytes",
        "Memory of each model the server holds loaded (Ollama's /api/ps), by placement.",
        labels=["config", "model", "placement"],
    )
    for row in rows:
        for model in row.get("models", []):
            vram = model["vram_bytes"]
            loaded.add_metric([row["config"], model["model"], "gpu"], vram)
            loaded.add_metric([row["config"], model["model"], "cpu"], model["size_bytes"] - vram)
    yield loaded


def serve(bind: str, port: int) -> None:
    """Serve until interrupted."""
    from wsgiref.simple_server import make_server

    from prometheus_client import make_wsgi_app

    registry = CollectorRegistry()
    registry.register(ServiceCollector())
    try:
        server = make_server(bind, port, make_wsgi_app(registry))
    except OSError:
        raise ToolkitError(
            f"port {port} on {bind} is already in use; pick another with --serve."
        ) from None
    with server:
        server.serve_forever()
