"""Real servers for the protocol tests, each on a free loopback port, each stopped afterwards.

- DiffusersServer: the project's own images/diffusers/server.py, in process, with a tiny pipeline.
- transformers_serve: Hugging Face's `transformers serve`, a subprocess, with a tiny Llama.
- ScriptedServer: a plain HTTP server answering fixed bytes per path: recorded Ollama answers,
  and the faults a real server cannot be made to produce on demand (a 500, a truncated stream).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from toolkit.paths import REPO_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not happen within {timeout} s")


def load_module(name: str, path: Path) -> ModuleType:
    """Import a file that is not part of a package (the image's server, a script)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def diffusers_server(
    model_dir: Path,
    served_name: str = "Tiny-Diffusion",
    api_key: str = "",
    url_seconds: int = 300,
    stall_seconds: float = 300.0,
    wrap: Any = None,
) -> Iterator[str]:
    """The server in process; `wrap(pipeline)` may change the real pipeline once loaded."""
    import uvicorn

    server_module = load_module("diffusers_server", REPO_ROOT / "images/diffusers/server.py")
    settings = server_module.Settings(
        model=str(model_dir),
        served_name=served_name,
        device="cpu",
        dtype="float32",
        steps=2,
        guidance=1.0,
        api_key=api_key,
        url_seconds=url_seconds,
        stall_seconds=stall_seconds,
    )

    def load(settings: Any) -> Any:
        pipeline = server_module.load_pipeline(settings)
        return wrap(pipeline) if wrap else pipeline

    port = free_port()
    config = uvicorn.Config(
        server_module.create_app(settings, load), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: httpx.get(f"{url}/health").status_code == 200,
            120,
            "the diffusers server loading its pipeline",
        )
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def transformers_serve(models_dir: Path, served_name: str = "Tiny-Llama") -> Iterator[str]:
    """`transformers serve NAME` run in a folder holding the model directory NAME."""
    executable = shutil.which("transformers") or str(Path(sys.executable).parent / "transformers")
    port = free_port()
    process = subprocess.Popen(
        [
            executable,
            "serve",
            served_name,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--device",
            "cpu",
        ],
        cwd=models_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: process.poll() is None and served_name in httpx.get(f"{url}/v1/models").text,
            120,
            "transformers serve listing the model",
        )
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    chunks: list[bytes] = field(default_factory=list)
    cut: bool = False  # close the connection in the middle of a chunked body
    pause: float = 0.0  # seconds between chunks, so that a client's timing can be checked


class ScriptedServer:
    """Answers fixed bytes for (method, path), or for (method, path, "stream=false") when the
    request's JSON body asks for no stream; 404 for anything else. With `capacity`, at most that
    many requests are answered at once; the others wait their turn (a server at its limit)."""

    def __init__(self, answers: dict[tuple[str, ...], Answer], capacity: int | None = None) -> None:
        self.answers = answers
        self.slots = threading.Semaphore(capacity) if capacity else contextlib.nullcontext()
        self.requests: list[tuple[str, str, bytes]] = []  # (method, path, body), in order
        self.arrived: list[float] = []  # time.monotonic() of each request, in the same order
        handler = self._handler()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        answers = self.answers
        requests = self.requests
        arrived = self.arrived
        slots = self.slots

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                requests.append((self.command, self.path, body))
                arrived.append(time.monotonic())
                key: tuple[str, ...] = (self.command, self.path)
                with contextlib.suppress(ValueError, AttributeError):
                    if json.loads(body or b"{}").get("stream") is False:
                        key = (*key, "stream=false") if (*key, "stream=false") in answers else key
                answer = answers.get(key, Answer(404, b'{"error": "not found"}'))
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                if answer.chunks:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for index, chunk in enumerate(answer.chunks):
                        if index and answer.pause:
                            self.wfile.flush()
                            time.sleep(answer.pause)
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    if answer.cut:
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def _limited(self) -> None:
                with slots:
                    self._answer()

            do_GET = _limited
            do_POST = _limited

        return Handler
