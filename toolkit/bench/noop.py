"""A no-op OpenAI streaming server: the fixed point against which the client's ceiling is measured.

It is written on raw asyncio protocols, not a web framework, so that on the same cores it is
cheaper than the client it measures: whatever rate the client cannot sustain against it is the
client's limit, not the server's. It answers `POST /v1/chat/completions` with a role-only chunk,
`max_tokens` one-word content chunks, a usage chunk and `[DONE]`, all at once; `GET /v1/models`
lists any model; `/metrics` is absent (404).
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from toolkit.errors import ToolkitError

MODEL = "noop"
_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _event(delta: dict[str, object], finish: str | None = None) -> bytes:
    body = {
        "id": "noop",
        "object": "chat.completion.chunk",
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


_ROLE = _event({"role": "assistant", "content": ""})
_WORD = _event({"content": " tok"})
_LAST = _event({"content": " tok"}, "length")


def stream_body(tokens: int, prompt_tokens: int = 1) -> bytes:
    """The whole chunked SSE body for `tokens` output tokens, usage and [DONE]."""
    usage = {
        "id": "noop",
        "object": "chat.completion.chunk",
        "model": MODEL,
        "choices": [],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": tokens,
            "total_tokens": prompt_tokens + tokens,
        },
    }
    events = [_ROLE, *([_WORD] * max(tokens - 1, 0)), _LAST if tokens else b""]
    events += [b"data: " + json.dumps(usage).encode() + b"\n\n", b"data: [DONE]\n\n"]
    return b"".join(_chunk(e) for e in events if e) + b"0\r\n\r\n"


class _Protocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive; requests are parsed just enough to find the body and max_tokens."""

    def __init__(self, cache: dict[int, bytes]) -> None:
        self.buffer = b""
        self.cache = cache
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            assert self.transport is not None
            self.transport.write(self._answer(head.split(" ", 2)[1], body))

    def _answer(self, path: str, body: bytes) -> bytes:
        if path.startswith("/v1/chat/completions"):
            tokens = int(json.loads(body or b"{}").get("max_tokens") or 16)
            if tokens not in self.cache:
                self.cache[tokens] = _HEAD + stream_body(tokens)
            return self.cache[tokens]
        if path.startswith("/v1/models"):
            data = json.dumps({"object": "list", "data": [{"id": MODEL}]}).encode()
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            return head + b"Content-Length: %d\r\n\r\n%s" % (len(data), data)
        if path.startswith("/health"):
            return b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


async def serve(host: str, port: int) -> asyncio.Server:
    cache: dict[int, bytes] = {}
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: _Protocol(cache), host, port, backlog=4096)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(port: int) -> Iterator[str]:
    """Run the server in a process of its own (its own core and GIL); yield its base URL."""
    process = subprocess.Popen([sys.executable, "-m", "toolkit.bench.noop", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise ToolkitError(
                        f"the no-op server could not listen on port {port}; "
                        "pick another with --port."
                    ) from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=5)


def main() -> None:
    """`python -m toolkit.bench.noop PORT`: the server in the foreground, for other clients."""

    async def forever() -> None:
        server = await serve("127.0.0.1", int(sys.argv[1]))
        async with server:
            await server.serve_forever()

    asyncio.run(forever())


if __name__ == "__main__":
    main()
