"""The HTML report, drawn from the JSON documents only, so saved runs can be compared later.

Self-contained: inline SVG drawn here (no plotting library, no script, no network), the result
JSON embedded for whoever wants the numbers. Plots: latency against throughput (the Pareto view,
one curve per run across its levels), latency and throughput against load, and the TTFT and ITL
distributions (empirical CDFs), one series per run and level.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import Any

from toolkit.bench.report import SCHEMA, about, load_label, max_rate_line
from toolkit.errors import UsageError

# Distinct, colour-blind-friendly strokes; the screenshot test looks for the first two.
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]
WIDTH, HEIGHT, PAD, LEFT = 560, 300, 40, 70
Series = tuple[str, list[tuple[float, float]]]
# /3 only added keys and the trace level: a /2 result reads and draws the same
READABLE = ("toolkit-bench/2", SCHEMA)


def read(path: str) -> dict[str, Any]:
    """A saved result, or one sentence saying why the file is not one."""
    hint = "give a file written by toolkit bench --json."
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path} ({type(exc).__name__}); {hint}") from None
    if not isinstance(doc, dict) or doc.get("schema") not in READABLE:
        raise UsageError(f"{path} is not a toolkit bench result ({' or '.join(READABLE)}); {hint}")
    return doc


def _nice(top: float) -> tuple[float, float]:
    """An axis maximum and tick step of 1, 2 or 5 times a power of ten."""
    if top <= 0 or not math.isfinite(top):
        return 1.0, 0.25
    raw = top / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return step * math.ceil(top / step), step


def _label(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def chart(title: str, xlabel: str, ylabel: str, series: list[Series]) -> str:
    """A line chart with markers, axes, ticks and a legend, as one inline <svg>."""
    points = [p for _, pts in series for p in pts]
    if not points:
        return f"<figure><figcaption>{escape(title)}</figcaption><p>no data</p></figure>"
    xmax, xstep = _nice(max(x for x, _ in points))
    ymax, ystep = _nice(max(y for _, y in points))
    total_h = HEIGHT + 16 * len(series)
    inner_w, inner_h = WIDTH - LEFT - PAD, HEIGHT - 2 * PAD

    def sx(x: float) -> float:
        return LEFT + inner_w * x / xmax

    def sy(y: float) -> float:
        return HEIGHT - PAD - inner_h * y / ymax

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{total_h}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<rect x="{LEFT}" y="{PAD}" width="{inner_w}" height="{inner_h}" fill="#fff" '
        'stroke="#888"/>',
    ]
    for i in range(round(xmax / xstep) + 1):
        x = sx(i * xstep)
        bottom = HEIGHT - PAD
        parts.append(
            f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" stroke="#888"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{_label(i * xstep)}</text>'
        )
    for i in range(round(ymax / ystep) + 1):
        y = sy(i * ystep)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - PAD}" y2="{y:.1f}" stroke="#eee"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_label(i * ystep)}</text>'
        )
    middle = LEFT + inner_w / 2
    parts.append(
        f'<text x="{middle}" y="{HEIGHT - 6}" text-anchor="middle">{escape(xlabel)}</text>'
    )
    parts.append(
        f'<text x="14" y="{HEIGHT / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {HEIGHT / 2})">{escape(ylabel)}</text>'
    )
    for index, (name, pts) in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in sorted(pts))
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="3"/>')
        if len(pts) <= 30:
            parts += [
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="{colour}"/>' for x, y in pts
            ]
        ly = HEIGHT + 16 * index  # the legend, below the plot
        parts.append(f'<rect x="{LEFT}" y="{ly}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{LEFT + 18}" y="{ly + 10}">{escape(name)}</text>')
    parts.append("</svg>")
    return f"<figure><figcaption>{escape(title)}</figcaption>{''.join(parts)}</figure>"


def _cdf(values: list[float]) -> list[tuple[float, float]]:
    ordered = sorted(values)
    step = max(1, len(ordered) // 200)
    return [(v, (i + 1) / len(ordered)) for i, v in enumerate(ordered)][::step]


def _load_label(level: dict[str, Any]) -> str:
    return load_label(level["load"])


def _plots(docs: list[dict[str, Any]], names: list[str]) -> list[str]:
    latency: list[Series] = []
    throughput: list[Series] = []
    ttft: list[Series] = []
    itl: list[Series] = []
    for doc, name in zip(docs, names, strict=True):
        levels = sorted(doc["levels"], key=lambda lv: lv["requests_per_s"])
        for metric in ("ttft_ms", "e2e_ms"):
            pts = [(lv["requests_per_s"], lv[metric]["p50"]) for lv in levels if lv[metric]]
            if pts:
                latency.append((f"{name} {metric[:-3]} p50", pts))
        throughput.append(
            (name, [(lv["requests_per_s"], lv["output_tokens_per_s"]) for lv in levels])
        )
        for level in levels:
            tag = f"{name} {_load_label(level)}" if len(docs) > 1 else _load_label(level)
            for out, key in ((ttft, "ttft_ms"), (itl, "itl_ms")):
                if level["distributions"][key]:
                    out.append((tag, _cdf(level["distributions"][key])))
    return [
        _pareto(docs, names),
        chart("Latency against load (p50)", "requests/s", "ms", latency),
        chart("Throughput against load", "requests/s", "output tokens/s", throughput),
        chart("TTFT distribution (CDF)", "TTFT ms", "fraction of requests", ttft),
        chart("ITL distribution (CDF)", "ITL ms", "fraction of gaps", itl),
    ]


def _pareto(docs: list[dict[str, Any]], names: list[str]) -> str:
    """The Pareto view: each run's levels as a curve of latency against throughput, so the run
    further right and lower delivers more tokens for the same wait."""
    series: list[Series] = []
    for doc, name in zip(docs, names, strict=True):
        for metric in ("ttft_ms", "e2e_ms"):
            pts = [
                (lv["output_tokens_per_s"], lv[metric]["p50"]) for lv in doc["levels"] if lv[metric]
            ]
            if pts:
                series.append((f"{name} {metric[:-3]} p50", pts))
    return chart("Latency against throughput (p50)", "output tokens/s", "ms", series)


def _table(doc: dict[str, Any]) -> str:
    head = [
        "load",
        "req/s",
        "ok",
        "client wait p50/p99",
        "TTFT p50/p99",
        "TTFT content p50/p99",
        "ITL p50/p99",
        "TPOT p50/p99",
        "E2E p50/p99",
        "out tok/s",
        "goodput/s",
        "errors",
    ]
    if doc["max_rate"] is not None:
        head.append("SLO")
    rows = []
    for lv in doc["levels"]:

        def pair(key: str, level: dict[str, Any] = lv) -> str:
            s = level[key]
            return f"{s['p50']:.1f} / {s['p99']:.1f}" if s else "-"

        cells = [
            _load_label(lv),
            f"{lv['requests_per_s']:g}",
            f"{lv['completed']}/{lv['requests']}",
            pair("client_wait_ms"),
            pair("ttft_ms"),
            pair("ttft_content_ms"),
            pair("itl_ms"),
            pair("tpot_ms"),
            pair("e2e_ms"),
            f"{lv['output_tokens_per_s']:g}",
            f"{lv['goodput']['requests_per_s']:g}" if lv["goodput"] else "-",
            ", ".join(f"{k}: {v}" for k, v in lv["errors"].items()) or "-",
        ]
        if doc["max_rate"] is not None:
            cells.append({True: "met", False: "missed", None: "-"}[lv.get("slo_met")])
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    warnings = [
        f"<li>{escape(_load_label(lv))}: {escape(w)}</li>"
        for lv in doc["levels"]
        for w in lv["warnings"]
    ]
    return (
        "<table><tr>"
        + "".join(f"<th>{escape(h)}</th>" for h in head)
        + "</tr>"
        + "".join(rows)
        + "</table>"
        + (f"<ul class=warn>{''.join(warnings)}</ul>" if warnings else "")
        + (f"<p>{escape(max_rate_line(doc['max_rate']))}</p>" if doc["max_rate"] else "")
    )


STYLE = """body{font:14px system-ui,sans-serif;margin:24px;color:#222}
figure{display:inline-block;vertical-align:top;margin:8px}figcaption{font-weight:600}
svg text{font-size:11px;fill:#333}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}.warn{color:#a00}"""


def render(docs: list[dict[str, Any]], names: list[str] | None = None) -> str:
    names = names or [doc["target"]["model"] for doc in docs]
    sections = []
    for doc, name in zip(docs, names, strict=True):
        sections.append(
            f"<h2>{escape(name)}</h2><p>{escape(about(doc['target']))}; "
            f"{escape(doc['created'])}</p>{_table(doc)}"
        )
    data = json.dumps(docs, sort_keys=True).replace("</", "<\\/")
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>toolkit bench</title>"
        f"<style>{STYLE}</style></head><body><h1>toolkit bench</h1>"
        + "".join(_plots(docs, names))
        + "".join(sections)
        + f'<script type="application/json" id="results">{data}</script></body></html>\n'
    )
