"""Live figures of running services: what each server reports, the GPUs, the watchdog's restarts.

Which server reports what is descriptor data (configs/_backends.yaml `metrics:`), carried to the
running container as a label, so a running service is read without the catalog:
- `prometheus` (vLLM): Prometheus text at the path; gauges are read as they are, and the
  latency percentiles and token rates come from the difference between two scrapes (histogram
  buckets and counters only ever grow), over the last `WINDOW` seconds;
- `ollama-ps` (Ollama has no /metrics): the models `/api/ps` says are loaded, and their memory.
GPU figures come from NVML (toolkit.host.gpus), restarts from the watchdog's records
(toolkit.lifecycle.watch).

`toolkit metrics` keeps its recent scrapes in the state directory so that a second call a minute
later has a baseline; `toolkit metrics --serve PORT` keeps them in memory and exposes every
service's figures as one Prometheus endpoint (prometheus-client).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from toolkit.catalog import names
from toolkit.host import gpus
from toolkit.host.engine import Container, Engine
from toolkit.lifecycle import watch as watchdog
from toolkit.lifecycle.running import Service, containers, own_url
from toolkit.paths import state_dir

if TYPE_CHECKING:
    import httpx

WINDOW = 60.0  # seconds the percentiles and rates cover
FIRST_WAIT = 5.0  # seconds between two scrapes when no earlier one is kept
QUANTILES = (0.5, 0.9, 0.99)
HISTOGRAMS = ("ttft", "itl")
COUNTERS = ("generation_tokens", "prompt_tokens")
GAUGES = ("running", "waiting", "kv_cache")


@dataclass(frozen=True)
class Source:
    """The metrics label of a container: its format, path and (Prometheus) metric names."""

    format: str
    path: str
    names: dict[str, str]

    @classmethod
    def of(cls, found: Container) -> Source | None:
        text = found.labels.get(names.label("metrics"))
        if not text:
            return None
        data = json.loads(text)
        return cls(data["format"], data["path"], data.get("names") or {})


@dataclass
class Snapshot:
    """One scrape, reduced to what the figures need: gauges, histogram buckets, counters."""

    at: float
    gauges: dict[str, float] = field(default_factory=dict)
    buckets: dict[str, dict[str, float]] = field(default_factory=dict)  # figure -> le -> count
    counters: dict[str, float] = field(default_factory=dict)


def parse_prometheus(text: str, source: Source, at: float) -> Snapshot:
    """The figures' samples in a Prometheus text page, summed over their labels."""
    from prometheus_client.parser import text_string_to_metric_families

    wanted = {metric: figure for figure, metric in source.names.items()}
    snapshot = Snapshot(at)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name
            if name in wanted and wanted[name] in GAUGES:
                figure = wanted[name]
                snapshot.gauges[figure] = snapshot.gauges.get(figure, 0.0) + sample.value
            elif name in wanted and wanted[name] in COUNTERS:
                figure = wanted[name]
                snapshot.counters[figure] = snapshot.counters.get(figure, 0.0) + sample.value
            elif name.endswith("_bucket") and wanted.get(name[: -len("_bucket")]) in HISTOGRAMS:
                figure = wanted[name[: -len("_bucket")]]
                counts = snapshot.buckets.setdefault(figure, {})
                le = sample.labels["le"]
                counts[le] = counts.get(le, 0.0) + sample.value
    return snapshot


def quantile(q: float, buckets: dict[str, float]) -> float | None:
    """The q-quantile of a cumulative histogram (Prometheus' histogram_quantile: linear
    interpolation within the bucket); None when it counts nothing."""
    bounds = sorted((float(le), count) for le, count in buckets.items())
    if not bounds or bounds[-1][1] <= 0:
        return None
    rank = q * bounds[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in bounds:
        if count >= rank:
            if math.isinf(upper):
                return lower  # beyond the last finite bound: its value, as Prometheus does
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


def _delta(now: dict[str, float], then: dict[str, float]) -> dict[str, float]:
    """Growth between two cumulative readings; a reading that shrank (the server restarted)
    counts from zero, as Prometheus' increase() does."""
    if any(now.get(key, 0.0) < value for key, value in then.items()):
        return dict(now)
    return {key: value - then.get(key, 0.0) for key, value in now.items()}


def server_figures(now: Snapshot, then: Snapshot | None) -> dict[str, Any]:
    """Gauges from the latest scrape; percentiles and rates over the span since `then`."""
    figures: dict[str, Any] = {
        "requests_running": now.gauges.get("running"),
        "requests_waiting": now.gauges.get("waiting"),
        "kv_cache_usage": now.gauges.get("kv_cache"),
    }
    if then is None or now.at <= then.at:
        return figures
    span = now.at - then.at
    figures["window_s"] = span
    for figure in HISTOGRAMS:
        if figure in now.buckets:
            counts = _delta(now.buckets[figure], then.buckets.get(figure, {}))
            figures[f"{figure}_s"] = {f"p{round(q * 100)}": quantile(q, counts) for q in QUANTILES}
    for figure in COUNTERS:
        if figure in now.counters:
            grown = _delta({"n": now.counters[figure]}, {"n": then.counters.get(figure, 0.0)})
            figures[f"{figure}_per_s"] = grown["n"] / span
    return figures


def baseline(history: list[Snapshot], now: float, window: float) -> Snapshot | None:
    """The newest scrape at least `window` old, else the oldest one there is."""
    older = [s for s in history if s.at <= now - window]
    if older:
        return older[-1]
    return history[0] if history else None


# --- the figures of running services -----------------------------------------------------------


@dataclass
class Reader:
    """Scrapes services and keeps their recent snapshots (in memory; the CLI saves them)."""

    window: float = WINDOW
    history: dict[str, list[Snapshot]] = field(default_factory=dict)

    def scrape(self, client: httpx.Client, found: Container, source: Source) -> Snapshot:
        response = client.get(own_url(found) + source.path)
        response.raise_for_status()
        snapshot = parse_prometheus(response.text, source, time.time())
        kept = self.history.setdefault(watchdog.unit(found.labels), [])
        kept[:] = [s for s in kept if s.at >= snapshot.at - 2 * self.window] + [snapshot]
        return snapshot

    def figures(self, engine: Engine, name: str | None, first_wait: float) -> list[dict[str, Any]]:
        import httpx

        rows = []
        found = [c for c in containers(engine, name) if c.status == "running"]
        with httpx.Client(timeout=5) as client:
            for container in found:
                rows.append(self._one(client, container, first_wait))
        return sorted(rows, key=lambda r: (str(r["config"]), str(r["replica"])))

    def _one(self, client: httpx.Client, found: Container, first_wait: float) -> dict[str, Any]:
        import httpx

        service = Service.from_labels(found.labels)
        restarts = watchdog.status_fields(found)
        row: dict[str, Any] = {
            "config": service.name,
            "replica": service.replica_name,
            "url": service.url,
            "health": found.health,
            "restarts": restarts["restarts"],
            "last_failure": restarts["last_failure"],
            "gpus": gpu_rows(service.gpus),
        }
        source = Source.of(found)
        if source is None:
            row["server"] = "reports no metrics"
            return row
        try:
            if source.format == "ollama-ps":
                row["models"] = ollama_models(client.get(service.url + source.path).json())
                return row
            history = self.history.get(watchdog.unit(found.labels), [])
            then = baseline(history, time.time(), self.window)
            if then is None and first_wait > 0:
                then = self.scrape(client, found, source)
                time.sleep(first_wait)
            now = self.scrape(client, found, source)
            row |= server_figures(now, then)
        except (httpx.HTTPError, ValueError) as exc:
            row["server"] = f"no answer from {own_url(found)}{source.path} ({exc})"
        return row


def load_now(found: Container) -> dict[str, float]:
    """What a Prometheus-reporting server says now, for `status`: requests running and waiting,
    KV-cache use; nothing where it reports none or does not answer within a second."""
    import urllib.request

    source = Source.of(found)
    if source is None or source.format != "prometheus":
        return {}
    try:
        with urllib.request.urlopen(own_url(found) + source.path, timeout=1) as answer:
            text = answer.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return {}
    return parse_prometheus(text, source, time.time()).gauges


def ollama_models(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """Ollama's /api/ps: each loaded model, its memory and how much of it is on the GPU."""
    return [
        {
            "model": entry.get("name", ""),
            "size_bytes": int(entry.get("size", 0)),
            "vram_bytes": int(entry.get("size_vram", 0)),
            "expires_at": entry.get("expires_at", ""),
        }
        for entry in answer.get("models") or []
    ]


def gpu_rows(ids: Iterable[str]) -> list[dict[str, Any]] | str:
    """The service's GPUs from NVML, or why there are none to show."""
    wanted = list(ids)
    if not wanted:
        return "none (a CPU service)"
    found = {g.index: g for g in gpus.usage()}
    if not found:
        return "NVML is not available on this host"
    return [asdict(found[i]) for i in wanted if i in found]


# --- the CLI's history between calls -----------------------------------------------------------


def _history_file() -> Any:
    return state_dir() / "metrics" / "history.json"


def load_reader(window: float) -> Reader:
    reader = Reader(window)
    try:
        data = json.loads(_history_file().read_text(encoding="utf-8"))
        reader.history = {k: [Snapshot(**s) for s in v] for k, v in data.items()}
    except (OSError, ValueError, TypeError):
        pass
    return reader


def save_reader(reader: Reader) -> None:
    path = _history_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {k: [asdict(s) for s in v] for k, v in reader.history.items()}
    path.write_text(json.dumps(data), encoding="utf-8")


def describe(row: dict[str, Any]) -> str:
    """A service's figures as a few aligned lines."""
    lines = [f"{row['config']}  {row['url']}  ({row['health']})"]

    def add(label: str, text: str) -> None:
        lines.append(f"  {label:<10} {text}")

    if "server" in row:
        add("server", str(row["server"]))
    if row.get("requests_running") is not None:
        add("requests", f"{row['requests_running']:g} running, {row['requests_waiting']:g} waiting")
    if row.get("kv_cache_usage") is not None:
        add("KV cache", f"{100 * row['kv_cache_usage']:.1f} % used")
    span = f" (last {row['window_s']:.0f} s)" if "window_s" in row else ""
    for figure, label in (("ttft_s", "TTFT"), ("itl_s", "ITL")):
        if figure in row:
            add(label, ", ".join(f"{q} {_seconds(v)}" for q, v in row[figure].items()) + span)
    if "generation_tokens_per_s" in row:
        add(
            "tokens/s",
            f"{row['generation_tokens_per_s']:.3g} generated, "
            f"{row.get('prompt_tokens_per_s', 0):.3g} prompt{span}",
        )
    for model in row.get("models", []):
        on_gpu = model["vram_bytes"] / model["size_bytes"] if model["size_bytes"] else 0
        add(
            "loaded",
            f"{model['model']}: {model['size_bytes'] / 2**30:.1f} GiB, "
            f"{100 * on_gpu:.0f} % on GPU, until {model['expires_at']}",
        )
    if "models" in row and not row["models"]:
        add("loaded", "no model in memory")
    gpu_figures = row["gpus"]
    if isinstance(gpu_figures, str):
        add("GPUs", gpu_figures)
    for gpu in gpu_figures if isinstance(gpu_figures, list) else []:
        power = "?" if gpu["power_watts"] is None else f"{gpu['power_watts']:.0f} W"
        add(
            f"GPU {gpu['index']}",
            f"{gpu['memory_used_gib']:.1f}/{gpu['memory_total_gib']:.1f} GiB, "
            f"{gpu['utilization_percent']:.0f} % busy, {power}",
        )
    failure = f" (last failure: {row['last_failure']})" if row["last_failure"] else ""
    add("restarts", f"{row['restarts']}{failure}")
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"
