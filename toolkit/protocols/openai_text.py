"""openai-text: OpenAI's chat completions API (vLLM, `transformers serve`)."""

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

LISTING = Listing("/v1/models", items="data", name="id")  # openai-image lists the same way
CHAT = "/v1/chat/completions"


# --- probe checks ------------------------------------------------------------------------------


def chat(client: Client, model: str, content: Any = PROMPT) -> str:
    payload = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 16}
    data = client.json(client.request("POST", CHAT, json=payload))
    try:
        message = data["choices"][0]["message"]
        text = message["content"]
        if data.get("object") != "chat.completion" or not isinstance(text, str):
            raise TypeError
    except (KeyError, IndexError, TypeError):
        raise ProbeError(
            Failure.MALFORMED, f"{CHAT} is not a chat completion: {data!r:.300}"
        ) from None
    return f"answered {text[:60]!r}"


def chat_stream(client: Client, model: str) -> str:
    """Parse server-sent events one line at a time; [DONE] ends the stream."""
    payload = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 16,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    text, chunks, usage, done, finished = [], 0, None, False, False
    for line in client.stream_lines(CHAT, payload):
        if not line.startswith("data:"):
            continue
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            done = True
            break
        try:
            event = json.loads(data)
            if event.get("object") != "chat.completion.chunk":
                raise ValueError(event.get("object"))
            for choice in event.get("choices") or []:
                text.append(choice.get("delta", {}).get("content") or "")
                finished = finished or choice.get("finish_reason") is not None
        except (ValueError, AttributeError):
            raise ProbeError(
                Failure.MALFORMED, f"a streamed event is malformed: {data[:200]!r}"
            ) from None
        usage = event.get("usage") or usage
        chunks += 1
    if not (done or finished):
        raise ProbeError(
            Failure.MALFORMED,
            f"the stream ended after {chunks} chunk(s) with neither a finish "
            "reason nor [DONE]: it was truncated",
        )
    tokens = f", {usage['completion_tokens']} tokens" if usage else ""
    return f"streamed {chunks} chunks{tokens}: {''.join(text)[:60]!r}"


def chat_image(client: Client, model: str) -> str:
    content = [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{TINY_PNG}"}},
    ]
    return chat(client, model, content)


def checks(
    client: Client, model: str, vision: bool, size: str
) -> list[tuple[str, Callable[[], str]]]:
    found: list[tuple[str, Callable[[], str]]] = [
        ("chat", lambda: chat(client, model)),
        ("chat-stream", lambda: chat_stream(client, model)),
    ]
    if vision:
        found.append(("chat-image", lambda: chat_image(client, model)))
    return found


# --- bench -------------------------------------------------------------------------------------


def bench_body(
    model: str, messages: list[dict[str, Any]], output_tokens: int, ignore_eos: bool, size: str
) -> dict[str, Any]:
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


def _answers(delta: dict[str, Any]) -> bool:
    return bool(delta.get("content") or delta.get("tool_calls"))


def _reasons(delta: dict[str, Any]) -> bool:
    return bool(delta.get("reasoning_content") or delta.get("reasoning"))


async def send(
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
    lines = Lines()
    async with http.post(f"{base}{CHAT}", json=body) as response:
        if await refused(response, result):
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
                answer = reasoning = False
                for choice in event.get("choices") or []:
                    delta = choice.get("delta") or {}
                    answer = answer or _answers(delta)
                    reasoning = reasoning or _reasons(delta)
                    if keep_text:
                        text.append(delta.get("content") or "")
                    finished = finished or choice.get("finish_reason") is not None
                if answer or reasoning:
                    result.content(now, reasoning=not answer)
                usage = event.get("usage")
                if usage:
                    result.output_tokens = usage.get("completion_tokens")
                    result.prompt_tokens = usage.get("prompt_tokens")
    if not (done or finished):
        result.error, result.detail = "truncated", "the stream ended without [DONE]"
    result.text = "".join(text)


SPEC = ProtocolSpec(
    listing=LISTING,
    proxy_paths=(LISTING.path, CHAT, "/v1/completions"),
    example=Example(
        CHAT, lambda model: {"model": model, "messages": [{"role": "user", "content": PROMPT}]}
    ),
    checks=checks,
    bench_body=bench_body,
    bench_send=send,
    server_metrics=True,
)
