"""One timed request per protocol, over aiohttp.

Why aiohttp: against the no-op server on the same two cores it streamed about 3,100 requests/s
where httpx's AsyncClient managed 170 (benchmarks/client_ceiling.py has the figures). Its default
64 KiB read buffer throttles long streams (vllm#39963), so the session is made with a 4 MiB one,
and streams are read as raw chunks and split into lines here rather than with `readline`.

Timing is correct by design:
- every time is `perf_counter()` seconds from the run's start;
- open-loop requests are measured from their *scheduled* send time, so a client or server that
  falls behind shows up as latency (no coordinated omission);
- the first token is the first chunk with content (text, reasoning or a tool-call delta), never
  the role-only chunk that vLLM sends first.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from toolkit.protocols.probe import IMAGE_PROMPT, ProbeError, png_size

READ_BUFFER = 4 * 2**20


@dataclass
class Result:
    """What one request did. Times are seconds on the run's clock."""

    scheduled: float
    started: float = 0.0
    first: float | None = None  # first content chunk
    chunks: list[float] = field(default_factory=list)  # arrival of every content chunk
    end: float = 0.0
    output_tokens: int | None = None
    prompt_tokens: int | None = None
    error: str | None = None  # the kind: http-429, stream-error, connection, truncated, ...
    detail: str = ""
    text: str = ""
    size: str | None = None  # openai-image
    images: int = 0
    server_tpot: float | None = None  # Ollama's eval_duration / eval_count, seconds

    @property
    def ok(self) -> bool:
        return self.error is None


def session(connections: int, timeout: float, api_key: str | None) -> aiohttp.ClientSession:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, force_close=False),
        timeout=aiohttp.ClientTimeout(total=timeout),
        headers=headers,
        read_bufsize=READ_BUFFER,
    )


def _has_content(delta: dict[str, Any]) -> bool:
    return bool(
        delta.get("content")
        or delta.get("reasoning_content")
        or delta.get("reasoning")
        or delta.get("tool_calls")
    )


class _Lines:
    """Split a byte stream into lines; a partial line waits for the next read."""

    def __init__(self) -> None:
        self.rest = b""

    def feed(self, data: bytes) -> list[bytes]:
        self.rest += data
        *lines, self.rest = self.rest.split(b"\n")
        return lines


async def openai_chat(
    http: aiohttp.ClientSession,
    base: str,
    body: dict[str, Any],
    result: Result,
    t0: float,
    keep_text: bool,
) -> None:
    """Stream a chat completion (SSE) with usage in the last chunk."""
    done = finished = False
    text: list[str] = []
    lines = _Lines()
    async with http.post(f"{base}/v1/chat/completions", json=body) as response:
        if response.status >= 400:
            result.error = f"http-{response.status}"
            result.detail = (await response.text())[:200]
            return
        async for data in response.content.iter_any():
            now = time.perf_counter() - t0
            for line in lines.feed(data):
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    done = True
                    continue
                try:
                    event = json.loads(payload)
                except ValueError:
                    result.error, result.detail = "malformed", payload[:200].decode("replace")
                    return
                if event.get("error"):
                    result.error, result.detail = "stream-error", json.dumps(event["error"])[:200]
                    return
                content = False
                for choice in event.get("choices") or []:
                    delta = choice.get("delta") or {}
                    if _has_content(delta):
                        content = True
                        if keep_text:
                            text.append(delta.get("content") or "")
                    finished = finished or choice.get("finish_reason") is not None
                if content:
                    if result.first is None:
                        result.first = now
                    result.chunks.append(now)
                usage = event.get("usage")
                if usage:
                    result.output_tokens = usage.get("completion_tokens")
                    result.prompt_tokens = usage.get("prompt_tokens")
    if not (done or finished):
        result.error, result.detail = "truncated", "the stream ended without [DONE]"
    result.text = "".join(text)


async def ollama_chat(
    http: aiohttp.ClientSession,
    base: str,
    body: dict[str, Any],
    result: Result,
    t0: float,
    keep_text: bool,
) -> None:
    """Stream /api/chat (NDJSON); the last line (done=true) carries eval_count and eval_duration."""
    done = False
    text: list[str] = []
    lines = _Lines()
    async with http.post(f"{base}/api/chat", json=body) as response:
        if response.status >= 400:
            result.error = f"http-{response.status}"
            result.detail = (await response.text())[:200]
            return
        async for data in response.content.iter_any():
            now = time.perf_counter() - t0
            for line in lines.feed(data):
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    result.error, result.detail = "malformed", line[:200].decode("replace")
                    return
                if event.get("error"):
                    result.error, result.detail = "stream-error", str(event["error"])[:200]
                    return
                message = event.get("message") or {}
                if message.get("content") or message.get("thinking") or message.get("tool_calls"):
                    if result.first is None:
                        result.first = now
                    result.chunks.append(now)
                    if keep_text:
                        text.append(message.get("content") or "")
                if event.get("done"):
                    done = True
                    result.output_tokens = event.get("eval_count")
                    result.prompt_tokens = event.get("prompt_eval_count")
                    if event.get("eval_count") and event.get("eval_duration"):
                        result.server_tpot = event["eval_duration"] / 1e9 / event["eval_count"]
    if not done:
        result.error, result.detail = "truncated", "the stream ended without done=true"
    result.text = "".join(text)


async def openai_image(
    http: aiohttp.ClientSession,
    base: str,
    body: dict[str, Any],
    result: Result,
    t0: float,
    keep_text: bool,
) -> None:
    """Generate images (b64_json) and check each decodes as a PNG of the asked size."""
    async with http.post(f"{base}/v1/images/generations", json=body) as response:
        if response.status >= 400:
            result.error = f"http-{response.status}"
            result.detail = (await response.text())[:200]
            return
        data = await response.json(content_type=None)
    want = tuple(int(x) for x in body["size"].split("x"))
    try:
        for item in data["data"]:
            if png_size(base64.b64decode(item["b64_json"], validate=True)) != want:
                raise ValueError(body["size"])
            result.images += 1
    except (KeyError, TypeError, ValueError, binascii.Error, ProbeError):
        result.error, result.detail = "malformed", f"not {body['n']} PNG(s) of {body['size']}"
        return
    result.first = time.perf_counter() - t0


SENDERS = {"openai-text": openai_chat, "ollama-text": ollama_chat, "openai-image": openai_image}


def request_body(
    protocol: str,
    model: str,
    messages: list[dict[str, Any]],
    output_tokens: int,
    ignore_eos: bool,
    size: str,
) -> dict[str, Any]:
    if protocol == "openai-image":
        return {
            "model": model,
            "prompt": IMAGE_PROMPT,
            "size": size,
            "n": 1,
            "response_format": "b64_json",
        }
    if protocol == "ollama-text":
        return {"model": model, "messages": messages, "options": {"num_predict": output_tokens}}
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": output_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if ignore_eos:
        body["ignore_eos"] = True  # vLLM's extension: exactly max_tokens tokens
    return body


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
    try:
        await SENDERS[protocol](http, base, body, result, t0, keep_text)
    except TimeoutError:
        result.error, result.detail = "timeout", "no answer within --timeout"
    except aiohttp.ClientPayloadError as exc:
        result.error, result.detail = "connection", f"the stream broke off ({exc})"[:200]
    except (aiohttp.ClientError, OSError) as exc:
        result.error, result.detail = "connection", f"{type(exc).__name__}: {exc}"[:200]
    result.end = time.perf_counter() - t0
    return result
