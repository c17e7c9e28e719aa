"""Hardened containers, on the real engine: the demo servers run confined and still serve.

The configs are copies of the demo configs under this file's own names (harden-demo-image,
harden-demo-text), built from the real templates, so the shared demo images stay untouched.
The real CPU vLLM (demo-vllm, its image shared with tests/engine/test_vllm.py) runs confined too.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.engine.conftest import VLLM, toolkit, with_local_model
from tests.engine.harden.conftest import DEMOS, readable_copy
from tests.servers import free_port
from toolkit.service.hardening import NON_ROOT_UID


def test_demo_servers_run_confined_and_still_serve(
    docker: Any, hardened: Path, stopped_after
) -> None:
    ports = {name: free_port() for name in DEMOS}
    for name, port in ports.items():
        stopped_after.append((name, hardened))
        started = toolkit("start", name, "--port", str(port), catalog=hardened)
        assert started.exit_code == 0, started.output

    image = httpx.post(
        f"http://127.0.0.1:{ports['harden-demo-image']}/v1/images/generations",
        json={"prompt": "a lighthouse", "size": "64x64"},
        timeout=120,
    )
    assert image.status_code == 200, image.text
    assert image.json()["data"][0]["b64_json"]
    chat = httpx.post(
        f"http://127.0.0.1:{ports['harden-demo-text']}/v1/chat/completions",
        json={
            "model": "Tiny-Llama",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 3,
        },
        timeout=120,
    )
    assert chat.status_code == 200, chat.text

    for name in DEMOS:
        assert_confined(docker, name)


def assert_confined(docker: Any, name: str) -> None:
    """Config `name`'s container runs as the non-root user, read-only, with only /tmp writable."""
    (container,) = docker.containers.list(
        filters={"label": f"io.github.model-serving-toolkit.config={name}"}
    )
    host = container.attrs["HostConfig"]
    assert container.attrs["Config"]["User"] == f"{NON_ROOT_UID}:{NON_ROOT_UID}"
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["ReadonlyRootfs"] is True
    assert set(host["Tmpfs"]) == {"/tmp"}
    assert host["PidsLimit"] == 4096
    assert host["Memory"] == 8 * 1024**3
    who = container.exec_run(["id", "-u"]).output.decode().strip()
    assert who == str(NON_ROOT_UID)
    denied = container.exec_run(["touch", "/opt/written"])
    assert denied.exit_code != 0 and b"Read-only file system" in denied.output
    scratch = container.exec_run(["touch", "/tmp/written"])
    assert scratch.exit_code == 0, scratch.output


def test_the_cpu_vllm_runs_read_only_and_still_serves(
    docker: Any, vllm_built: Path, stopped_after: list[tuple[str, Path | None]]
) -> None:
    """vLLM writes its compile caches to /cache, its sockets and torch's headers to /tmp."""
    port = free_port()
    stopped_after.append((VLLM, vllm_built))
    started = toolkit("start", VLLM, "--port", str(port), catalog=vllm_built)
    assert started.exit_code == 0, started.output
    chat = httpx.post(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        json={
            "model": "Tiny-Llama",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 3,
        },
        timeout=120,
    )
    assert chat.status_code == 200, chat.text
    assert_confined(docker, VLLM)


def test_a_fresh_cache_volume_is_owned_by_the_server_user(docker: Any, hardened: Path) -> None:
    """A named volume first mounted by the image copies the image's /cache, owner included."""
    volume = f"harden-cache-{uuid.uuid4().hex[:8]}"
    try:
        output = docker.containers.run(
            "toolkit/harden-demo-text:5.24.0",
            entrypoint=["sh", "-c", "mkdir -p /cache/huggingface && stat -c %u /cache /cache/home"],
            volumes={volume: {"bind": "/cache", "mode": "rw"}},
            cap_drop=["ALL"],
            remove=True,
        )
        assert output.decode().split() == [str(NON_ROOT_UID)] * 2
    finally:
        docker.volumes.get(volume).remove()


def test_start_refuses_a_local_model_the_server_cannot_read(
    docker: Any, hardened: Path, tiny_models: Path, tmp_path: Path
) -> None:
    model = readable_copy(tiny_models / "Tiny-Llama", tmp_path / "Tiny-Llama")
    (model / "config.json").chmod(0o600)
    catalog = with_local_model(hardened, "harden-demo-text", model, tmp_path / "catalog")
    result = toolkit("start", "harden-demo-text", "--port", str(free_port()), catalog=catalog)
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"error: {model / 'config.json'} is not readable by other users and the server runs as "
        f"uid {NON_ROOT_UID}; run chmod -R a+rX {model}."
    )
