"""From timed requests to figures: the versioned JSON document and the terminal table.

The JSON is the one source the table and the HTML are drawn from; its schema is documented in
docs/bench-json.md and versioned by SCHEMA, bumped on any change a reader would notice.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import Counter
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from toolkit.bench.load import Settings
from toolkit.bench.runner import LevelRun, Target
from toolkit.protocols.measure import Result

SCHEMA = "toolkit-bench/3"
SAMPLES = 2000  # raw values kept per distribution, for the HTML histograms
CEILING_SHARE = 0.8  # a level above this share of the client's ceiling carries a warning
# An open-loop level kept to its schedule when it sent at >= this share of the schedule's own
# rate and its p99 schedule lag stayed under LAG_LIMIT_MS.
SEND_SHARE = 0.95
LAG_LIMIT_MS = 50.0


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on sorted values."""
    if len(values) == 1:
        return values[0]
    position = (len(values) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    out = {f"p{q}": round(percentile(ordered, q), 3) for q in (50, 90, 99)}
    out["mean"] = round(sum(ordered) / len(ordered), 3)
    out["max"] = round(ordered[-1], 3)
    return out


def _since(result: Result, at: float | None) -> float | None:
    return (at - result.scheduled) * 1000 if at is not None else None


def timings(result: Result) -> dict[str, float | None]:
    """TTFT (any token, reasoning included), TTFT to the first answer token, and E2E, from the
    scheduled send time; TPOT = (E2E - TTFT) / (output tokens - 1)."""
    e2e = (result.end - result.scheduled) * 1000
    ttft = _since(result, result.first)
    tokens = result.output_tokens
    tpot = None
    if ttft is not None and tokens and tokens > 1:
        tpot = (e2e - ttft) / (tokens - 1)
    return {
        "ttft": ttft,
        "ttft_content": _since(result, result.first_answer),
        "e2e": e2e,
        "tpot": tpot,
    }


def _meets(result: Result, slo: dict[str, float]) -> bool:
    t = timings(result)
    itls = [1000 * (b - a) for a, b in zip(result.chunks, result.chunks[1:], strict=False)]
    values = {**t, "itl": max(itls) if itls else None}  # an SLO's ttft is to any token
    return all(values[key] is None or values[key] <= limit for key, limit in slo.items())  # type: ignore[operator]


def _values(results: list[Result], metric: str) -> list[float]:
    if metric == "itl":
        return [
            1000 * (b - a) for r in results for a, b in zip(r.chunks, r.chunks[1:], strict=False)
        ]
    return [v for r in results if (v := timings(r)[metric]) is not None]


def slo_met(run: LevelRun, targets: dict[str, float]) -> bool:
    """--find-max-rate: every request answered, the sends kept to the schedule, and each
    percentile within its limit (`ttft_p99` -> 500 ms); a metric never measured misses."""
    if not run.results or not all(r.ok for r in run.results):
        return False
    for key, limit in targets.items():
        metric, _, q = key.partition("_p")
        values = sorted(_values(run.results, metric))
        if not values or percentile(values, float(q)) > limit:
            return False
    return True


def _sample(values: list[float]) -> list[float]:
    picked = values if len(values) <= SAMPLES else random.Random(0).sample(values, SAMPLES)
    return [round(v, 3) for v in picked]


def summarize(run: LevelRun, settings: Settings, ceiling: dict[str, Any] | None) -> dict[str, Any]:
    ok = [r for r in run.results if r.ok]
    per = [timings(r) for r in ok]
    ttft = [t["ttft"] for t in per if t["ttft"] is not None]
    ttft_content = [t["ttft_content"] for t in per if t["ttft_content"] is not None]
    e2e = [t["e2e"] for t in per if t["e2e"] is not None]
    tpot = [t["tpot"] for t in per if t["tpot"] is not None]
    itl = _values(ok, "itl")
    lag = [1000 * max(r.started - r.scheduled, 0.0) for r in run.results]
    out_tokens = sum(r.output_tokens or 0 for r in ok)
    in_tokens = sum(r.prompt_tokens or 0 for r in ok)
    seconds = run.duration or math.inf
    # due (the schedule; closed loop: its slot came free) to headers on the wire
    wait = [1000 * max(r.sent - r.scheduled, 0.0) for r in run.results if r.sent is not None]
    starts = sorted(r.started if r.sent is None else r.sent for r in run.results)
    planned = sorted(r.scheduled for r in run.results)
    level: dict[str, Any] = {
        "load": run.level.as_dict(),
        "requests": len(run.results),
        "completed": len(ok),
        "failed": len(run.results) - len(ok),
        "errors": dict(Counter(r.error for r in run.results if r.error)),
        "error_examples": {r.error: r.detail for r in run.results if r.error},
        "duration_s": round(run.duration, 3),
        "requests_per_s": round(len(ok) / seconds, 3),
        "send_rate": _rate(starts),
        "schedule_lag_ms": stats(lag),
        "client_wait_ms": stats(wait),
        "ttft_ms": stats(ttft),
        "ttft_content_ms": stats(ttft_content),
        "itl_ms": stats(itl),
        "tpot_ms": stats(tpot),
        "e2e_ms": stats(e2e),
        "output_tokens": out_tokens,
        "prompt_tokens": in_tokens,
        "usage_missing": sum(r.output_tokens is None for r in ok),
        "output_tokens_per_s": round(out_tokens / seconds, 3),
        "total_tokens_per_s": round((out_tokens + in_tokens) / seconds, 3),
        "goodput": None,
        "server": run.server,
        "server_tpot_ms": stats([1000 * r.server_tpot for r in ok if r.server_tpot]),
        "distributions": {"ttft_ms": _sample(ttft), "itl_ms": _sample(itl)},
        "warnings": [],
    }
    if run.level.rate is not None:
        level["target_rate"] = run.level.rate
    if run.level.rate is not None or run.level.trace is not None:
        level["schedule_rate"] = _rate(planned)
    if settings.slo:
        good = sum(_meets(r, settings.slo) for r in ok)
        level["goodput"] = {
            "requests_per_s": round(good / seconds, 3),
            "fraction": round(good / len(run.results), 4) if run.results else 0.0,
        }
    sizes = sorted({r.size for r in run.results if r.size})
    if sizes and any(r.images for r in run.results):
        level["images"] = {
            size: {
                "images": sum(r.images for r in ok if r.size == size),
                "images_per_s": round(sum(r.images for r in ok if r.size == size) / seconds, 3),
                "e2e_ms": stats([timings(r)["e2e"] or 0.0 for r in ok if r.size == size]),
            }
            for size in sizes
        }
    if run.slo_met is not None:
        level["slo_met"] = run.slo_met
    if settings.turns > 1:
        level["turns"] = [
            _turn(turn, [r for r in ok if r.turn == turn]) for turn in range(settings.turns)
        ]
    level["warnings"] = _warnings(level, ceiling)
    return level


def _turn(turn: int, ok: list[Result]) -> dict[str, Any]:
    """One turn's figures over every conversation: the prompt grows with the history."""
    prompts = [r.prompt_tokens for r in ok if r.prompt_tokens is not None]
    return {
        "turn": turn + 1,
        "completed": len(ok),
        "prompt_tokens_mean": round(sum(prompts) / len(prompts), 1) if prompts else None,
        "ttft_ms": stats([t for r in ok if (t := timings(r)["ttft"]) is not None]),
    }


def _rate(times: list[float]) -> float | None:
    """Events per second between the first and the last of these sorted times."""
    if len(times) < 2 or times[-1] <= times[0]:
        return None
    return round((len(times) - 1) / (times[-1] - times[0]), 3)


def _behind(level: dict[str, Any]) -> str | None:
    """Why an open-loop level did not keep to its schedule, judged by when its requests went
    out (not by when answers came back: a slow server does not delay an open-loop send)."""
    planned, sent = level.get("schedule_rate"), level["send_rate"]
    lags = [(level[key] or {}).get("p99", 0.0) for key in ("schedule_lag_ms", "client_wait_ms")]
    if planned and sent is not None and sent < SEND_SHARE * planned:
        reason = f"sent {sent:g} req/s of the {planned:g} scheduled"
    elif max(lags) > LAG_LIMIT_MS:
        reason = f"sends came p99 {max(lags):g} ms after their schedule, over {LAG_LIMIT_MS:g} ms"
    else:
        return None
    return (
        f"{reason}: the client fell behind the schedule "
        "(latencies count from the schedule, so they include the delay)."
    )


def _warnings(level: dict[str, Any], ceiling: dict[str, Any] | None) -> list[str]:
    warnings = []
    behind = _behind(level) if "schedule_rate" in level else None  # open loops only
    if behind:
        warnings.append(behind)
    if ceiling:
        for key, unit in (("requests_per_s", "req/s"), ("output_tokens_per_s", "tokens/s")):
            if ceiling.get(key) and level[key] > CEILING_SHARE * ceiling[key]:
                warnings.append(
                    f"{level[key]:g} {unit} is near this client's ceiling of "
                    f"{ceiling[key]:g} {unit} (toolkit bench --calibrate): the client may be "
                    "the bottleneck."
                )
    if level["usage_missing"]:
        warnings.append(
            f"{level['usage_missing']} answer(s) had no token usage: tokens/s undercounts."
        )
    return warnings


def _toolkit_version() -> str:
    try:
        return version("model-serving-toolkit")
    except PackageNotFoundError:
        return "unknown"


def document(
    target: Target,
    settings: Settings,
    runs: list[LevelRun],
    *,
    service: dict[str, Any],
    ceiling: dict[str, Any] | None,
    token_check: dict[str, Any] | None = None,
) -> dict[str, Any]:
    levels = [summarize(run, settings, ceiling) for run in runs]
    return {
        "schema": SCHEMA,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "toolkit_version": _toolkit_version(),
        "target": {
            "url": target.url,
            "protocol": target.protocol,
            "model": target.model,
            **service,
        },
        "config": settings.as_dict(),
        "client_ceiling": ceiling,
        "token_check": token_check,
        "levels": levels,
        "max_rate": _max_rate(levels, settings) if settings.find_max_rate else None,
    }


def _max_rate(levels: list[dict[str, Any]], settings: Settings) -> dict[str, Any]:
    """The highest probed rate that met every SLO, its goodput, and the probes (the curve)."""
    met = [level for level in levels if level.get("slo_met")]
    best = max(met, key=lambda level: level["target_rate"], default=None)
    return {
        "slo_ms": settings.slo_targets,
        "rate": best["target_rate"] if best else None,
        "goodput_per_s": best["goodput"]["requests_per_s"] if best else None,
        "probes": [
            {"rate": level["target_rate"], "slo_met": level["slo_met"]}
            for level in levels
            if "slo_met" in level
        ],
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def table(doc: dict[str, Any]) -> str:
    """One row per level: rates, latency percentiles, tokens/s, errors; warnings after."""
    from toolkit.output import table as aligned

    rows = []
    # a reasoning model's answers start after its thinking: then both TTFTs get a column
    metrics = ["client_wait", "ttft_any", "ttft_content", "itl", "tpot", "e2e"]
    if all(level["ttft_content_ms"] == level["ttft_ms"] for level in doc["levels"]):
        metrics[1:3] = ["ttft"]
    for level in doc["levels"]:
        row = {
            "load": load_label(level["load"]),
            "req/s": _fmt(level["requests_per_s"]),
            "ok": f"{level['completed']}/{level['requests']}",
        }
        for metric in metrics:
            s = level["ttft_ms" if metric == "ttft_any" else f"{metric}_ms"] or {}
            row[f"{metric} p50/p99 ms"] = f"{_fmt(s.get('p50'))}/{_fmt(s.get('p99'))}"
        row["out tok/s"] = _fmt(level["output_tokens_per_s"])
        if doc["max_rate"] is not None:
            row["slo"] = {True: "met", False: "missed", None: "-"}[level.get("slo_met")]
        if level["goodput"] is not None:
            row["goodput/s"] = _fmt(level["goodput"]["requests_per_s"])
        row["errors"] = ",".join(f"{k}:{v}" for k, v in level["errors"].items()) or "-"
        rows.append(row)
    lines = [aligned(rows, list(rows[0])) if rows else "no levels ran"]
    for level in doc["levels"]:
        server = level["server"]
        if server:
            lines.append(
                f"server ({_load(level)}): ttft mean {_fmt(server['ttft_ms']['mean'])} ms, "
                f"queue mean {_fmt(server['queue_ms']['mean'])} ms, "
                f"{server['generation_tokens']} tokens generated "
                f"(client counted {level['output_tokens']})" + _hit_rate(server)
            )
        for turn in level.get("turns") or []:
            lines.append(
                f"turn {turn['turn']} ({_load(level)}): {turn['completed']} answered, prompt "
                f"{_fmt(turn['prompt_tokens_mean'])} tokens on average, "
                f"ttft p50 {_fmt((turn['ttft_ms'] or {}).get('p50'))} ms"
            )
        for size, figures in (level.get("images") or {}).items():
            lines.append(f"images {size}: {figures['images_per_s']:g}/s")
        lines += [f"warning ({_load(level)}): {w}" for w in level["warnings"]]
    if doc["max_rate"] is not None:
        lines.append(max_rate_line(doc["max_rate"]))
    check = doc.get("token_check")
    if check:
        lines.append(
            f"tokenizer check: {check['matches']}/{check['checked']} answers match usage exactly"
        )
    return "\n".join(lines)


def max_rate_line(found: dict[str, Any]) -> str:
    """--find-max-rate's answer in one sentence, for the table and the HTML."""
    limits = ",".join(f"{key}={value:g}ms" for key, value in found["slo_ms"].items())
    if found["rate"] is None:
        return f"no probed rate met {limits}: the lowest missed too"
    return (
        f"highest rate meeting {limits}: {found['rate']:g}/s, goodput "
        f"{found['goodput_per_s']:g}/s ({len(found['probes'])} probes above)"
    )


def _hit_rate(server: dict[str, Any]) -> str:
    rate = server["prefix_cache_hit_rate"]
    if rate is None:
        return ""
    return (
        f", prefix cache hit rate {100 * rate:.1f} % "
        f"({server['prefix_cache_hits']}/{server['prefix_cache_queries']} prompt tokens)"
    )


def _load(level: dict[str, Any]) -> str:
    return load_label(level["load"])


def load_label(load: dict[str, Any]) -> str:
    """A level's load in a few characters: `5/s`, `c=8`, `trace x2`."""
    if load["kind"] == "trace":
        return f"trace x{load['speed']:g}"
    return f"{load['rate']:g}/s" if load["rate"] is not None else f"c={load['concurrency']}"


def about(target: dict[str, Any]) -> str:
    """What ran, in one line: the endpoint and, for a catalog service, its config, backend,
    engine arguments and image digest (the things that differ between compared runs)."""
    parts = [f"{target['protocol']} {target['model']} at {target['url']}"]
    if target.get("config"):
        parts.append(f"config {target['config']} ({target.get('backend') or 'backend unknown'})")
    if target.get("engine_args") is not None:
        parts.append(f"engine args: {' '.join(target['engine_args']) or 'none'}")
    if target.get("image_digest"):
        parts.append(f"image {target['image_digest']}")
    return "; ".join(parts)


def frontier(points: list[tuple[float, float | None, float | None]]) -> list[bool]:
    """Which (output tokens/s, TTFT p50, E2E p50) points are on the Pareto frontier: no other
    point has as much throughput and as little latency on both, and more or less on one. A
    point without latencies (nothing answered) is never on it."""

    def beats(a: tuple[float, float, float], b: tuple[float, float, float]) -> bool:
        return a[0] >= b[0] and a[1] <= b[1] and a[2] <= b[2] and a != b

    known = [(x, t, e) for x, t, e in points if t is not None and e is not None]
    return [
        t is not None and e is not None and not any(beats(q, (x, t, e)) for q in known)
        for x, t, e in points
    ]


def compare_table(docs: list[dict[str, Any]], names: list[str]) -> str:
    """Every level of every run in one table, throughput against latency, the levels on the
    Pareto frontier across all the runs marked; then what each run ran."""
    from toolkit.output import table as aligned

    levels = [
        (name, level) for doc, name in zip(docs, names, strict=True) for level in doc["levels"]
    ]

    def p50(level: dict[str, Any], key: str) -> float | None:
        return (level[key] or {}).get("p50")

    points = [
        (level["output_tokens_per_s"], p50(level, "ttft_ms"), p50(level, "e2e_ms"))
        for _, level in levels
    ]
    rows = [
        {
            "run": name,
            "load": load_label(level["load"]),
            "ok": f"{level['completed']}/{level['requests']}",
            "req/s": _fmt(level["requests_per_s"]),
            "out tok/s": _fmt(level["output_tokens_per_s"]),
            "ttft p50 ms": _fmt(p50(level, "ttft_ms")),
            "e2e p50 ms": _fmt(p50(level, "e2e_ms")),
            "pareto": "yes" if best else "-",
        }
        for (name, level), best in zip(levels, frontier(points), strict=True)
    ]
    lines = [aligned(rows, list(rows[0])) if rows else "no levels ran"]
    lines += [f"{name}: {about(doc['target'])}" for doc, name in zip(docs, names, strict=True)]
    return "\n".join(lines)
