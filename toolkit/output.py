"""Text the CLI prints: JSON and aligned tables. Light: the fast `list` path uses it too."""

from __future__ import annotations

import json
from typing import Any

LIST_COLUMNS = ["name", "model", "protocol", "backend", "gpus"]


def as_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    widths = {c: max([len(c), *(len(str(r[c])) for r in rows)]) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(str(row[c]).ljust(widths[c]) for c in columns).rstrip() for row in rows]
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
