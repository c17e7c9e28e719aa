"""A real Hugging Face Hub mirror for the pull tests, offline: olah (PyPI) serving local git repos.

olah is a self-hosted Hub mirror; with `offline = true` and `mirrors-path` it serves the Hub API
(model info, the file tree, resolve with ETag/X-Repo-Commit, LFS files from .git/lfs/objects)
from git repositories on disk, so the real huggingface_hub client downloads from it through
HF_ENDPOINT. `Throttle` is a TCP proxy in front of it that slows or stalls the bytes and notes
the Range requests, to interrupt and resume a download the way a bad link would.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import free_port, wait_until

GIT = ["git", "-c", "user.email=pull@test", "-c", "user.name=pull", "-c", "commit.gpgsign=false"]


def olah_binary() -> str:
    beside = Path(sys.executable).parent / "olah-cli"
    found = str(beside) if beside.exists() else shutil.which("olah-cli")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("olah-cli (the dev extra 'olah') is missing; run make setup")
        pytest.skip("olah-cli (the dev extra 'olah') is not installed")
    return found


def commit_files(repo: Path, files: dict[str, bytes], lfs: set[str]) -> str:
    """Commit files into a git repo (made if needed); those in `lfs` as Git LFS pointers with
    their objects in .git/lfs/objects, as the Hub stores weights. Returns the commit SHA."""
    if not (repo / ".git").exists():
        repo.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    for name, data in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name in lfs:
            oid = hashlib.sha256(data).hexdigest()
            obj = repo / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
            obj.parent.mkdir(parents=True, exist_ok=True)
            obj.write_bytes(data)
            pointer = (
                f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(data)}\n"
            )
            path.write_text(pointer)
        else:
            path.write_bytes(data)
    subprocess.run([*GIT, "-C", str(repo), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(repo), "commit", "-q", "-m", "weights"], check=True)
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    )
    return head.stdout.strip()


class Throttle:
    """A TCP proxy: at most `rate` bytes/s towards the client, none while `stalled` is set."""

    def __init__(self, host: str, upstream: int) -> None:
        self.host = host
        self.upstream = upstream
        self.rate = 0.0  # 0: unlimited
        self.stalled = threading.Event()
        self.requests: list[bytes] = []
        self.sent = 0
        self.server = socket.create_server((host, free_port()))
        self.port = int(self.server.getsockname()[1])
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def ranges(self) -> list[str]:
        """The Range headers the client sent, in order."""
        found = []
        for head in self.requests:
            for line in head.decode("latin-1").split("\r\n"):
                if line.lower().startswith("range:"):
                    found.append(line.split(":", 1)[1].strip())
        return found

    def _accept(self) -> None:
        while self.open:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                self.requests.append(data)
                upstream.sendall(data)
        with contextlib.suppress(OSError):
            upstream.shutdown(socket.SHUT_WR)

    def _down(self, upstream: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(16384 if self.rate else 65536):
                while self.stalled.is_set() and self.open:
                    time.sleep(0.05)
                if self.rate:
                    time.sleep(len(data) / self.rate)
                client.sendall(data)
                self.sent += len(data)
        for sock in (client, upstream):
            sock.close()

    def close(self) -> None:
        self.open = False
        self.stalled.clear()
        self.server.close()


@contextlib.contextmanager
def olah_mirror(root: Path, bind: str = "127.0.0.1") -> Iterator[tuple[Path, Throttle]]:
    """olah serving the git repos under root/mirrors/models/ORG/NAME, behind a Throttle on
    `bind`; yields the mirrors folder and the proxy (its url is the HF_ENDPOINT)."""
    binary = olah_binary()
    mirrors = root / "mirrors"
    (mirrors / "models").mkdir(parents=True, exist_ok=True)
    port = free_port()
    proxy = Throttle(bind, port)
    config = root / "olah.toml"
    config.write_text(
        "[basic]\n"
        f'host = "127.0.0.1"\nport = {port}\n'
        f'repos-path = "{root / "repos"}"\n'
        f'mirrors-path = ["{mirrors}"]\n'
        f'mirror-netloc = "{bind}:{proxy.port}"\n'
        f'mirror-lfs-netloc = "{bind}:{proxy.port}"\n'
        "[accessibility]\noffline = true\n"
    )
    log = (root / "olah.log").open("w")
    process = subprocess.Popen(
        [binary, "-c", str(config)], cwd=root, stdout=log, stderr=subprocess.STDOUT
    )
    try:

        def answers() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True

        wait_until(answers, 60, "olah to listen")
        yield mirrors, proxy
    finally:
        proxy.close()
        process.terminate()
        process.wait(timeout=20)
        log.close()
