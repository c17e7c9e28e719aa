"""The client's own ceiling, measured against the no-op server and remembered for later runs.

Any later level that comes within 80% of it carries a warning: its figures may say more about
this client than about the server.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from toolkit.bench import noop
from toolkit.bench.load import Level, Settings
from toolkit.bench.runner import Runner, Target
from toolkit.paths import state_dir
from toolkit.protocols import Protocol

CONCURRENCY = 64
FILE = "bench-ceiling.json"


def measure(
    port: int, requests: int, output_tokens: int = 16, long_tokens: int = 1024
) -> dict[str, Any]:
    """Closed loop at 64 connections: short answers for req/s, long ones for streamed tokens/s."""
    with noop.running(port) as url:
        target = Target(url, Protocol.OPENAI_TEXT, noop.MODEL)
        short = Settings(
            Level(concurrency=CONCURRENCY),
            requests=requests,
            output_tokens=output_tokens,
            prompt_tokens=8,
        )
        long = Settings(
            Level(concurrency=CONCURRENCY),
            requests=max(requests // 8, CONCURRENCY),
            output_tokens=long_tokens,
            prompt_tokens=8,
        )
        quick = asyncio.run(Runner(target, short).run())[0]
        slow = asyncio.run(Runner(target, long).run())[0]
    tokens = sum(r.output_tokens or 0 for r in slow.results if r.ok)
    return {
        "requests_per_s": round(sum(r.ok for r in quick.results) / quick.duration, 1),
        "output_tokens_per_s": round(tokens / slow.duration, 1),
        "concurrency": CONCURRENCY,
        "requests": requests,
    }


def save(ceiling: dict[str, Any]) -> str:
    path = state_dir() / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ceiling, indent=2, sort_keys=True), encoding="utf-8")
    return str(path)


def saved() -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir() / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
