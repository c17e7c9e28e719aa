"""The engine's answers the read-only commands need, without the API client's imports.

One request and its whole answer is HTTP/1.0 over a plain socket: the engine then closes the
connection at the answer's end (never chunked), so reading to the end is reading the body.
`toolkit list`, `show` and `status` ask through here, and so does toolkit/host/engine.py's
client for everything but the streams (logs, events), which need http.client.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.parse

from toolkit.catalog.names import label, service_filter

DEFAULT_HOST = "unix:///var/run/docker.sock"
API_VERSION = "v1.41"  # Docker Engine 20.10 (Debian 12's docker.io) and every newer engine


def engine_host() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def connect_socket(parsed: urllib.parse.ParseResult, timeout: float) -> socket.socket:
    """A socket connected to the engine (unix:// or tcp://); OSError where none answers."""
    if parsed.scheme == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(parsed.path)
        except OSError:
            sock.close()
            raise
        return sock
    host, _, port = parsed.netloc.rpartition(":")
    return socket.create_connection((host or "localhost", int(port or 2375)), timeout)


def url(path: str, query: dict[str, str] | None = None) -> str:
    return f"/{API_VERSION}{path}" + ("?" + urllib.parse.urlencode(query) if query else "")


def exchange(sock: socket.socket, method: str, target: str) -> tuple[int, bytes]:
    """Send one request on a connected socket and read its whole answer: status and body.
    OSError or ValueError where the answer breaks off or is not HTTP."""
    head = f"{method} {target} HTTP/1.0\r\nHost: docker\r\n"
    if method != "GET":
        head += "Content-Length: 0\r\n"
    chunks = []
    with sock:
        sock.sendall((head + "\r\n").encode())
        while data := sock.recv(65536):
            chunks.append(data)
    status_line, _, rest = b"".join(chunks).partition(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        raise ValueError("not an HTTP answer")
    return int(parts[1]), rest.partition(b"\r\n\r\n")[2]


def _get(path: str, query: dict[str, str] | None, timeout: float) -> object:
    parsed = urllib.parse.urlparse(engine_host())
    status, body = exchange(connect_socket(parsed, timeout), "GET", url(path, query))
    if status != 200:
        raise ValueError(f"the engine answered {status}")
    return json.loads(body)


class View:
    """What the engine holds of the toolkit's: built images (size in bytes), running ports."""

    __slots__ = ("images", "running")

    def __init__(self, images: dict[str, int], running: dict[str, int]) -> None:
        self.images = images
        self.running = running


def view(timeout: float = 2.0) -> View | None:
    """A quick look for `list` and `show`; None where no engine answers."""
    ours = {"filters": json.dumps({"label": [label("config")]})}
    services = {"filters": json.dumps({"label": service_filter()})}
    try:
        images = _get("/images/json", ours, timeout)
        found = _get("/containers/json", services, timeout)
        assert isinstance(images, list) and isinstance(found, list)
        sizes = {tag: int(i.get("Size", 0)) for i in images for tag in i.get("RepoTags") or []}
        running = {
            c["Labels"].get(label("config"), ""): int(c["Labels"].get(label("port")) or 0)
            for c in found
            if c.get("State") == "running"
        }
    except (OSError, ValueError, KeyError, AttributeError, AssertionError):
        return None
    return View(sizes, running)


def image_size(ref: str, timeout: float = 2.0) -> int | None:
    """The bytes an image takes, None where it is not built or no engine answers."""
    try:
        record = _get(f"/images/{urllib.parse.quote(ref, safe='')}/json", None, timeout)
        return int(record["Size"]) if isinstance(record, dict) else None
    except (OSError, ValueError, KeyError):
        return None
