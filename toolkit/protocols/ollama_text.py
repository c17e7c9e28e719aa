"""ollama-text: Ollama's own chat API (/api/chat, NDJSON streams)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from toolkit.protocols import Example, Listing, ProtocolSpec
from toolkit.protocols.common import PROMPT, TINY_PNG, Failure, ProbeError
from toolkit.protocols.measure import Lines, Result, refused

if TYPE_CHECKING:
    import aiohttp

    from toolkit.protocols.client import Client

# Ollama lists "name:latest" for a model pulled or created without a tag.
LISTING = Listing("/api/tags", items="models", name="name", default_tag=":latest")
CHAT = "/api/chat"


def _messages(images: list[str] | None = None) -> list[dict[str, Any]]:
    user: dict[str, Any] = {"role": "user", "content": PROMPT}
    if images:
        user |= {"content": "What is in this image?", "images": images}
    return [{"role": "system", "content": "You are a helpful assistant."}, user]


# --- probe checks ------------------------------------------------------------------------------


def chat(client: Client, model: str, images: list[str] | None = None) -> str:
    payload = {"model": model, "messages": _messages(images), "stream": False}
    data = client.json(client.request("POST", CHAT, json=payload))
    try:
        text = data["message"]["content"]
        if not isinstance(text, str) or data.get("done") is not True:
            raise TypeError
    except (KeyError, TypeError):
        raise ProbeError(Failure.MALFORMED, f"{CHAT} is not a chat answer: {data!r:.300}") from None
    return f"answered {text[:60]!r}"


def chat_stream(client: Client, model: str) -> str:
    """Without a `stream` key Ollama streams NDJSON: one object per line, the last done=true."""
    payload = {"model": model, "messages": _messages()}
    text, lines, done = [], 0, False
    for line in client.stream_lines(CHAT, payload):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            # The final object carries statistics and may have no message (Ollama's API docs).
            message = event.get("message") if event.get("done") else event["message"]
            text.append((message or {}).get("content") or "")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ProbeError(
                Failure.MALFORMED, f"a streamed line is malformed: {line[:200]!r}"
            ) from None
        lines += 1
        if event.get("done"):
            done = True
            break
    if not done:
        raise ProbeError(
            Failure.MALFORMED,
            f"the stream ended after {lines} line(s) without done=true: it was truncated",
        )
    return f"streamed {lines} lines: {''.join(text)[:60]!r}"


def checks(
    client: Client, model: str, vision: bool, size: str
) -> list[tuple[str, Callable[[], str]]]:
    found: list[tuple[str, Callable[[], str]]] = [
        ("chat", lambda: chat(client, model)),
        ("chat-stream", lambda: chat_stream(client, model)),
    ]
    if vision:
        found.append(("chat-image", lambda: chat(client, model, [TINY_PNG])))
    return found


# --- bench -------------------------------------------------------------------------------------


def bench_body(
    model: str, messages: list[dict[str, Any]], output_tokens: int, ignore_eos: bool, size: str
) -> dict[str, Any]:
    return {"model": model, "messages": messages, "options": {"num_predict": output_tokens}}


async def send(
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
    lines = Lines()
    async with http.post(f"{base}{CHAT}", json=body) as response:
        if await refused(response, result):
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
                answer = bool(message.get("content") or message.get("tool_calls"))
                if answer or message.get("thinking"):
                    result.content(now, reasoning=not answer)
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


SPEC = ProtocolSpec(
    listing=LISTING,
    proxy_paths=(LISTING.path, CHAT, "/api/generate", "/api/show", "/api/version", "/api/ps"),
    example=Example(CHAT, lambda model: {"model": model, "messages": _messages(), "stream": False}),
    checks=checks,
    bench_body=bench_body,
    bench_send=send,
)
