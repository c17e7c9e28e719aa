"""One timed request, over aiohttp; each protocol's module (toolkit/protocols/) has the sender.

Why aiohttp: against the no-op server on the same two cores it streamed about 3,100 requests/s
where httpx's AsyncClient managed 170 (benchmarks/client_ceiling.py has the figures). Its default
64 KiB read buffer throttles long streams (vllm#39963), so the session is made with a 4 MiB one,
and streams are read as raw chunks and split into lines (toolkit/protocols/measure.py) rather
than with `readline`. How the times are taken: toolkit/protocols/measure.py; when the headers of
a request went on the wire (after it waited for a connection) comes from aiohttp's tracing.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from types import SimpleNamespace
from typing import Any

import aiohttp

from toolkit.protocols import spec
from toolkit.protocols.measure import Result

READ_BUFFER = 4 * 2**20
# The request the current task is sending, and the run's clock; read by the tracing hook.
_SENDING: ContextVar[tuple[Result, float]] = ContextVar("sending")


async def _headers_sent(
    session: aiohttp.ClientSession, context: SimpleNamespace, params: object
) -> None:
    found = _SENDING.get(None)
    if found is not None:
        result, t0 = found
        result.sent = time.perf_counter() - t0


def session(connections: int, timeout: float, api_key: str | None) -> aiohttp.ClientSession:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(_headers_sent)
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, force_close=False),
        timeout=aiohttp.ClientTimeout(total=timeout),
        headers=headers,
        read_bufsize=READ_BUFFER,
        trace_configs=[trace],
    )


async def send(
    http: aiohttp.ClientSession,
    protocol: str,
    base: str,
    body: dict[str, Any],
    scheduled: float,
    t0: float,
    keep_text: bool = False,
) -> Result:
    """Send one request; every failure becomes an error kind on the result, never an exception."""
    result = Result(scheduled=scheduled, size=body.get("size"))
    result.started = time.perf_counter() - t0
    token = _SENDING.set((result, t0))
    try:
        await spec(protocol).bench_send(http, base, body, result, t0, keep_text)
    except TimeoutError:
        result.error, result.detail = "timeout", "no answer within --timeout"
    except aiohttp.ClientPayloadError as exc:
        result.error, result.detail = "connection", f"the stream broke off ({exc})"[:200]
    except (aiohttp.ClientError, OSError) as exc:
        result.error, result.detail = "connection", f"{type(exc).__name__}: {exc}"[:200]
    finally:
        _SENDING.reset(token)
    result.end = time.perf_counter() - t0
    return result
