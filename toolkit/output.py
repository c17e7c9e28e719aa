"""Text the CLI prints: JSON and aligned tables. Light: the fast `list` path uses it too."""

from __future__ import annotations

import json

# typing's own import costs the fast paths a few milliseconds; mypy reads this name as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Any, TextIO

LIST_COLUMNS = ["name", "model", "protocol", "backend", "gpus", "built", "running"]


def as_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


def cell(value: Any) -> str:
    """A table cell: yes/no for flags, "-" for nothing, "?" unknown (None)."""
    if value is True or value is False:
        return "yes" if value else "no"
    if value is None:
        return "?"
    return str(value) if value != "" else "-"


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    shown = [{c: cell(r.get(c, "")) for c in columns} for r in rows]
    widths = {c: max([len(c), *(len(r[c]) for r in shown)]) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(row[c].ljust(widths[c]) for c in columns).rstrip() for row in shown]
    return "\n".join(lines)


def duration(seconds: int) -> str:
    """Seconds in the largest two units a person reads at a glance: 45s, 3m12s, 2h05m, 3d04h."""
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


STATUS_COLUMNS = ["config", "model", "state", "health", "url", "gpus", "uptime", "restarts"]


def status_table(rows: list[dict[str, Any]]) -> str:
    """`toolkit status`'s table: uptime in human units, the load, the last failure."""
    shown = [
        r
        | {"config": f"{r['config']} {r['replica']}".strip()}
        | {"uptime": duration(int(str(r["uptime_s"])))}
        | {"last failure": f"{r['last_failure_at']} {str(r['last_failure'])[:40]}".strip()}
        | {"load": load(r)}
        for r in rows
    ]
    return table(shown, [*STATUS_COLUMNS, "load", "last failure"])


def load(row: dict[str, Any]) -> str:
    """What the server says it is doing (vLLM's /metrics): requests running and waiting, KV use."""
    if row.get("running") is None:
        return ""
    kv = row.get("kv_cache")
    cache = f", KV {100 * float(kv):.0f}%" if kv is not None else ""
    return f"{row['running']:.0f} running, {row.get('waiting') or 0:.0f} waiting{cache}"


class Waiting:
    """Progress of a long wait: one live line on a terminal, a plain line every 5 s elsewhere."""

    EVERY = 5.0

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self.shown_at: float | None = None

    def show(self, elapsed: float, message: str) -> None:
        line = f"[{elapsed:5.1f} s] {message}"
        if self.live:
            import shutil

            width = shutil.get_terminal_size().columns
            self.stream.write("\r\033[K" + line[: width - 1])
        elif self.shown_at is None or elapsed - self.shown_at >= self.EVERY:
            self.stream.write(line + "\n")
        else:
            return
        self.shown_at = elapsed
        self.stream.flush()

    def __enter__(self) -> Waiting:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.live and self.shown_at is not None:
            self.stream.write("\n")  # keep the last live line, end it
            self.stream.flush()
