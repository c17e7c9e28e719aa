"""The protocol layer: everything that talks to a running model goes through here.

One function per check; each returns a Check or raises ProbeError with one of four kinds, so a
user can tell "not reachable" from "the model is not listed" from "the server answered with an
error" from "the answer is malformed".
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import httpx

from toolkit.errors import ToolkitError
from toolkit.protocols import Protocol

PROMPT = "Hello!"
IMAGE_PROMPT = "A cat holding a sign that says hello world"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# A 2x2 red PNG, for the image-in-chat check of vision models.
TINY_PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a73"
        "0000001649444154789c63f8cfc0f09f8181e13f03c3ff0c0c0c00003bf405fb"
        "0b3e0ddc0000000049454e44ae426082"
    )
).decode()


class Failure(StrEnum):
    UNREACHABLE = "unreachable"
    NOT_LISTED = "not-listed"
    ERROR_STATUS = "error-status"
    MALFORMED = "malformed"


class ProbeError(ToolkitError):
    def __init__(self, kind: Failure, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Check:
    name: str
    ok: bool
    latency_ms: float
    detail: str
    failure: Failure | None = None


@dataclass
class Verdict:
    protocol: str
    model: str
    url: str
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "model": self.model,
            "url": self.url,
            "verdict": "pass" if self.passed else "fail",
            "checks": [asdict(c) for c in self.checks],
        }


class Client:
    """A thin HTTP client: base URL, optional API key, a timeout on every request."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ProbeError(
                Failure.UNREACHABLE, f"{self.base_url} is not reachable ({type(exc).__name__})"
            ) from None
        _raise_for_status(response)
        return response

    @staticmethod
    def json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ProbeError(
                Failure.MALFORMED,
                f"{response.request.url.path} answered with a body that is not "
                f"JSON: {response.text[:200]!r}",
            ) from None

    def stream_lines(self, path: str, payload: dict[str, Any]) -> Iterator[str]:
        try:
            with self.http.stream("POST", path, json=payload) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise_for_status(response)
                yield from response.iter_lines()
        except httpx.TransportError as exc:
            raise ProbeError(
                Failure.MALFORMED
                if isinstance(exc, httpx.RemoteProtocolError)
                else Failure.UNREACHABLE,
                f"the stream from {path} broke off ({type(exc).__name__})",
            ) from None


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise ProbeError(
            Failure.ERROR_STATUS,
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:300]}",
        )


def _timed(name: str, run: Callable[[], str]) -> Check:
    started = time.perf_counter()
    try:
        detail = run()
        ok, failure = True, None
    except ProbeError as exc:
        detail, ok, failure = str(exc), False, exc.kind
    return Check(name, ok, round((time.perf_counter() - started) * 1000, 1), detail, failure)


# --- openai-text -------------------------------------------------------------------------------


def openai_models(client: Client) -> list[str]:
    data = Client.json(client.request("GET", "/v1/models"))
    try:
        return [str(m["id"]) for m in data["data"]]
    except (KeyError, TypeError):
        raise ProbeError(
            Failure.MALFORMED, f"/v1/models is not a model list: {data!r:.200}"
        ) from None


def _require_listed(names: list[str], model: str, where: str) -> str:
    if model not in names:
        raise ProbeError(
            Failure.NOT_LISTED,
            f"{where} does not list '{model}' (it lists: {', '.join(names) or 'none'})",
        )
    return f"'{model}' is listed"


def openai_chat(client: Client, model: str, content: Any = PROMPT) -> str:
    payload = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 16}
    data = Client.json(client.request("POST", "/v1/chat/completions", json=payload))
    try:
        message = data["choices"][0]["message"]
        text = message["content"]
        if data.get("object") != "chat.completion" or not isinstance(text, str):
            raise TypeError
    except (KeyError, IndexError, TypeError):
        raise ProbeError(
            Failure.MALFORMED, f"/v1/chat/completions is not a chat completion: {data!r:.300}"
        ) from None
    return f"answered {text[:60]!r}"


def openai_chat_stream(client: Client, model: str) -> str:
    """Parse server-sent events one line at a time; [DONE] ends the stream."""
    payload = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 16,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    text, chunks, usage, done, finished = [], 0, None, False, False
    for line in client.stream_lines("/v1/chat/completions", payload):
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


def openai_chat_image(client: Client, model: str) -> str:
    content = [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{TINY_PNG}"}},
    ]
    return openai_chat(client, model, content)


# --- ollama-text -------------------------------------------------------------------------------


def ollama_tags(client: Client) -> list[str]:
    data = Client.json(client.request("GET", "/api/tags"))
    try:
        names = [str(m["name"]) for m in data["models"]]
    except (KeyError, TypeError):
        raise ProbeError(
            Failure.MALFORMED, f"/api/tags is not a model list: {data!r:.200}"
        ) from None
    # Ollama lists "name:latest" for a model pulled or created without a tag.
    return names + [n.removesuffix(":latest") for n in names if n.endswith(":latest")]


def _ollama_messages(images: list[str] | None = None) -> list[dict[str, Any]]:
    user: dict[str, Any] = {"role": "user", "content": PROMPT}
    if images:
        user |= {"content": "What is in this image?", "images": images}
    return [{"role": "system", "content": "You are a helpful assistant."}, user]


def ollama_chat(client: Client, model: str, images: list[str] | None = None) -> str:
    payload = {"model": model, "messages": _ollama_messages(images), "stream": False}
    data = Client.json(client.request("POST", "/api/chat", json=payload))
    try:
        text = data["message"]["content"]
        if not isinstance(text, str) or data.get("done") is not True:
            raise TypeError
    except (KeyError, TypeError):
        raise ProbeError(
            Failure.MALFORMED, f"/api/chat is not a chat answer: {data!r:.300}"
        ) from None
    return f"answered {text[:60]!r}"


def ollama_chat_stream(client: Client, model: str) -> str:
    """Without a `stream` key Ollama streams NDJSON: one object per line, the last done=true."""
    payload = {"model": model, "messages": _ollama_messages()}
    text, lines, done = [], 0, False
    for line in client.stream_lines("/api/chat", payload):
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


# --- openai-image ------------------------------------------------------------------------------


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; ProbeError if it is not a PNG."""
    if len(data) < 24 or not data.startswith(PNG_MAGIC) or data[12:16] != b"IHDR":
        raise ProbeError(Failure.MALFORMED, "the image is not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def openai_image(client: Client, model: str, size: str, response_format: str, n: int = 1) -> str:
    payload = {
        "model": model,
        "prompt": IMAGE_PROMPT,
        "size": size,
        "n": n,
        "response_format": response_format,
    }
    data = Client.json(client.request("POST", "/v1/images/generations", json=payload))
    try:
        items = data["data"]
        if len(items) != n:
            raise ProbeError(Failure.MALFORMED, f"asked for {n} image(s), got {len(items)}")
        images = [_image_bytes(client, item, response_format) for item in items]
    except (KeyError, TypeError):
        raise ProbeError(
            Failure.MALFORMED, f"/v1/images/generations is not an image list: {data!r:.200}"
        ) from None
    want = tuple(int(x) for x in size.split("x"))
    for image in images:
        got = png_size(image)
        if got != want:
            raise ProbeError(Failure.MALFORMED, f"asked for {size}, got a {got[0]}x{got[1]} image")
    return f"{n} PNG(s) of {size} via {response_format}"


def _image_bytes(client: Client, item: dict[str, Any], response_format: str) -> bytes:
    if response_format == "b64_json":
        try:
            return base64.b64decode(item["b64_json"], validate=True)
        except (binascii.Error, TypeError):
            raise ProbeError(Failure.MALFORMED, "b64_json is not valid base64") from None
    return client.request("GET", item["url"]).content


# --- probes ------------------------------------------------------------------------------------


def model_listed(
    protocol: str, base_url: str, model: str, api_key: str | None = None, timeout: float = 1.0
) -> bool:
    """Readiness: the server lists the served name (not merely a port that answers)."""
    client = Client(base_url, api_key, timeout)
    try:
        names = ollama_tags(client) if protocol == "ollama-text" else openai_models(client)
        return model in names
    except ProbeError:
        return False
    finally:
        client.close()


def probe(
    protocol: str,
    base_url: str,
    model: str,
    *,
    vision: bool = False,
    api_key: str | None = None,
    timeout: float = 120.0,
    size: str = "64x64",
) -> Verdict:
    """Run every check of the protocol; stop at the first failure a later check depends on."""
    client = Client(base_url, api_key, timeout)
    verdict = Verdict(protocol, model, client.base_url)
    listed: Callable[[], list[str]]
    checks: list[tuple[str, Callable[[], str]]]
    if protocol == "openai-text":
        listing, listed = "/v1/models", lambda: openai_models(client)
        checks = [
            ("chat", lambda: openai_chat(client, model)),
            ("chat-stream", lambda: openai_chat_stream(client, model)),
        ]
        if vision:
            checks.append(("chat-image", lambda: openai_chat_image(client, model)))
    elif protocol == "ollama-text":
        listing, listed = "/api/tags", lambda: ollama_tags(client)
        checks = [
            ("chat", lambda: ollama_chat(client, model)),
            ("chat-stream", lambda: ollama_chat_stream(client, model)),
        ]
        if vision:
            checks.append(("chat-image", lambda: ollama_chat(client, model, [TINY_PNG])))
    elif protocol == "openai-image":
        listing, listed = "/v1/models", lambda: openai_models(client)
        checks = [
            ("image-b64", lambda: openai_image(client, model, size, "b64_json")),
            ("image-url", lambda: openai_image(client, model, size, "url")),
        ]
    else:
        raise ToolkitError(f"unknown protocol '{protocol}'; use one of {', '.join(Protocol)}.")
    try:
        first = _timed("models", lambda: _require_listed(listed(), model, listing))
        verdict.checks.append(first)
        if first.ok:
            verdict.checks.extend(_timed(name, run) for name, run in checks)
    finally:
        client.close()
    return verdict


EXAMPLE_IMAGE_SIZE = "256x256"  # a size a CPU answers in seconds, and a GPU at once
_SAVE_PNG = (
    "import base64, json, sys; "
    "open('image.png', 'wb').write(base64.b64decode(json.load(sys.stdin)['data'][0]['b64_json'])); "
    "print('saved image.png')"
)


def example_request(protocol: str, url: str, model: str) -> str:
    """A curl command sending the seed's request, ready to paste (an image is saved to a file)."""
    import shlex

    body: dict[str, Any]
    if protocol == Protocol.OLLAMA_TEXT:
        path = "/api/chat"
        body = {"model": model, "messages": _ollama_messages(), "stream": False}
    elif protocol == Protocol.OPENAI_IMAGE:
        path = "/v1/images/generations"
        body = {
            "model": model,
            "prompt": IMAGE_PROMPT,
            "size": EXAMPLE_IMAGE_SIZE,
            "response_format": "b64_json",
        }
    else:
        path = "/v1/chat/completions"
        body = {"model": model, "messages": [{"role": "user", "content": PROMPT}]}
    command = (
        f"curl -s {url}{path} -H 'Content-Type: application/json' "
        f"-d {shlex.quote(json.dumps(body))}"
    )
    if protocol == Protocol.OPENAI_IMAGE:
        command += f" | python3 -c {shlex.quote(_SAVE_PNG)}"
    return command


def describe(verdict: Verdict) -> str:
    """Human lines: one per check, then the verdict."""
    lines = [
        f"{'ok  ' if c.ok else 'FAIL'} {c.name:<12} {c.latency_ms:>8.1f} ms  {c.detail}"
        for c in verdict.checks
    ]
    word = "PASS" if verdict.passed else "FAIL"
    lines.append(f"{word}: {verdict.protocol} probe of '{verdict.model}' at {verdict.url}")
    return "\n".join(lines)
