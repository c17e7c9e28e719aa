"""The authenticating proxy, on the real engine, in front of the real demo servers.

harden-demo-text (`transformers serve`, which has no authentication of its own) and
harden-demo-image (the diffusers server) are started with --bind 0.0.0.0 and an API key: the
key is enforced on every path, only the protocol's paths pass, streaming still streams, and the
key is in no container's configuration.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engine.conftest import BASE_IMAGE, toolkit
from tests.servers import free_port
from toolkit.catalog.configs import Catalog
from toolkit.lifecycle import proxy

KEY = "harden-test-key-0123456789"
LABEL = "com.docker.compose.project"


def _exposed(name: str, catalog: Path, stopped_after: list[Any]) -> str:
    port = free_port()
    stopped_after.append((name, catalog))
    started = toolkit(
        "start",
        name,
        "--bind",
        "0.0.0.0",
        "--port",
        str(port),
        catalog=catalog,
        env={"TOOLKIT_API_KEY": KEY, "TOOLKIT_BASE_IMAGE": BASE_IMAGE},
    )
    assert started.exit_code == 0, started.output
    assert KEY not in started.output
    return f"http://127.0.0.1:{port}"


def _containers(docker: Any, name: str) -> dict[str, Any]:
    found = docker.containers.list(filters={"label": f"{LABEL}=toolkit-{name}"})
    return {c.labels["com.docker.compose.service"]: c for c in found}


def test_text_service_behind_the_proxy(docker: Any, hardened: Path, stopped_after) -> None:
    url = _exposed("harden-demo-text", hardened, stopped_after)
    good = {"Authorization": f"Bearer {KEY}"}
    paths = ["/v1/models", "/v1/chat/completions", "/metrics", "/health", "/docs", "/", "/x"]
    for path in paths:
        for headers in ({}, {"Authorization": "Bearer wrong-key-0123"}, {"Authorization": KEY}):
            answer = httpx.get(url + path, headers=headers)
            assert answer.status_code == 401, (path, headers, answer.text)
            assert answer.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{url}/v1/models", headers=good).json()["data"][0]["id"] == "Tiny-Llama"
    for closed in ("/metrics", "/health", "/docs", "/openapi.json", "/v1/responses", "/"):
        assert httpx.get(url + closed, headers=good).status_code == 404, closed

    body = {
        "model": "Tiny-Llama",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 8,
        "stream": True,
    }
    with httpx.stream(
        "POST", f"{url}/v1/chat/completions", json=body, headers=good, timeout=120
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert "content-length" not in stream.headers, "streamed, not buffered whole"
        events = [line for line in stream.iter_lines() if line.startswith("data: ")]
    chunks = [json.loads(event[6:]) for event in events if event != "data: [DONE]"]
    assert len(chunks) > 2, "one event per token, not one answer"
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"

    too_big = httpx.post(
        f"{url}/v1/chat/completions", content=b"x" * (17 * 1024 * 1024), headers=good
    )
    assert too_big.status_code == 413

    parts = _containers(docker, "harden-demo-text")
    assert set(parts) == {"model", "proxy"}
    assert parts["model"].attrs["HostConfig"]["PortBindings"] in ({}, None)
    assert parts["proxy"].attrs["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostIp"] == "0.0.0.0"
    for container in parts.values():
        assert KEY not in json.dumps(container.attrs)
    assert proxy.key_file("harden-demo-text").is_file()
    toolkit("stop", "harden-demo-text", catalog=hardened)
    assert not proxy.key_file("harden-demo-text").exists()


def test_image_service_behind_the_proxy(docker: Any, hardened: Path, stopped_after) -> None:
    url = _exposed("harden-demo-image", hardened, stopped_after)
    good = {"Authorization": f"Bearer {KEY}"}
    assert httpx.post(f"{url}/v1/images/generations", json={"prompt": "x"}).status_code == 401
    answer = httpx.post(
        f"{url}/v1/images/generations",
        json={"prompt": "a lighthouse", "size": "64x64", "response_format": "url"},
        headers=good,
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    link = answer.json()["data"][0]["url"]
    assert link.startswith(f"{url}/v1/images/files/"), "the link points at the proxy"
    assert httpx.get(link).status_code == 401
    image = httpx.get(link, headers=good)
    assert (image.status_code, image.headers["content-type"]) == (200, "image/png")
    assert httpx.get(f"{url}/health", headers=good).status_code == 404


@pytest.mark.parametrize("name", ["llama3-8b", "minicpm-v2.5", "flux.1-dev"])
def test_each_protocols_nginx_config_is_valid(
    docker: Any, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nginx -t, in the proxy image, on the config rendered for each protocol."""
    monkeypatch.setenv("TOOLKIT_BASE_IMAGE", BASE_IMAGE)
    proxy.ensure_image()
    catalog = Catalog.load()
    config = catalog[name]
    upstream = f"model:{catalog.backend(config).container_port}"
    (tmp_path / "nginx.conf").write_text(proxy.nginx_conf(config, upstream))
    (tmp_path / "key").write_text(KEY)
    result = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--add-host",
            "model:127.0.0.1",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--cap-drop",
            "ALL",
            "-v",
            f"{tmp_path / 'nginx.conf'}:/etc/toolkit/nginx.conf:ro",
            "-v",
            f"{tmp_path / 'key'}:/run/secrets/api_key:ro",
            "--entrypoint",
            "sh",
            proxy.IMAGE,
            "-c",
            "sed 's/exec nginx/nginx -t/' /opt/toolkit/entrypoint.sh | sh",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
