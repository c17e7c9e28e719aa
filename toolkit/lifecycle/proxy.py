"""The authenticating proxy that exposes any service: nginx in front of the model server.

`toolkit start --api-key KEY` (needed with `--bind` beyond loopback) adds a second service,
`proxy`, to the compose project: Debian's nginx (images/proxy/) checks the bearer key, passes
only the protocol's own paths (`proxy_paths` in its toolkit/protocols/ module; everything else,
such as vLLM's /metrics or Ollama's /api/pull, answers 404), streams SSE and NDJSON unbuffered,
and bounds request sizes and times. The model then publishes no host port; only the proxy does.
The key reaches nginx as a compose secret file, never as an environment value, so `docker
inspect` shows none.

nginx, not a Python proxy: it is Debian's maintained package, streams without buffering when
told to, and its request limits and timeouts are settings, not code of ours.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.errors import UsageError
from toolkit.paths import state_dir
from toolkit.protocols import spec
from toolkit.service import hardening, replicas

if TYPE_CHECKING:
    from toolkit.catalog.backends import Backend
    from toolkit.catalog.configs import Config

IMAGE = "toolkit/proxy:nginx-bookworm"
LISTEN_PORT = 8080
KEY_PATTERN = re.compile(r"^[A-Za-z0-9._~+/=-]{8,256}$")
MAX_BODY = "16m"  # a chat with a few images inlined as base64
READ_TIMEOUT = "600s"  # between two reads from the model: a long prefill, a large image


def check_key(key: str) -> None:
    """A key the proxy's configuration can hold as written; a bad one is bad input (exit 2)."""
    if not KEY_PATTERN.match(key):
        raise UsageError(
            "the API key must be 8 to 256 characters of A-Z a-z 0-9 . _ ~ + / = -; "
            "pick another (e.g. openssl rand -hex 32)."
        )


def nginx_conf(config: Config, upstream: str) -> str:
    """nginx's configuration for this service; `upstream` is HOST:PORT of what it fronts."""
    from toolkit.render import compose as render

    protocol = spec(config.protocol)
    template = render.environment().get_template("proxy/nginx.conf.j2")
    return template.render(
        header=f"{render.GENERATED_MARK} for {config.name}.",
        name=config.name,
        protocol=config.protocol.value,
        exact=protocol.proxy_paths,
        prefixes=protocol.proxy_prefixes,
        listen_port=LISTEN_PORT,
        upstream=upstream,
        max_body=MAX_BODY,
        read_timeout=READ_TIMEOUT,
    )


def conf_file(name: str) -> Path:
    return state_dir() / "compose" / f"{name}.nginx.conf"


def key_file(name: str) -> Path:
    return state_dir() / "secrets" / f"{name}.api_key"


def hand_over_key(name: str, key: str) -> Path:
    """The key as a file for the compose secret, in a 0700 folder; `stop` removes it.

    The file itself is 0644: Compose bind-mounts it and nginx runs as a non-root user; the
    folder keeps other host users out."""
    path = key_file(name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.parent.chmod(0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key)
    return path


def set_up(rendered: str, config: Config, backend: Backend, key: str) -> str:
    """The compose file to start with the proxy: its image built, the key handed over."""
    import yaml

    from toolkit.render import compose as render

    ensure_image()
    hand_over_key(config.name, key)
    conf_file(config.name).parent.mkdir(parents=True, exist_ok=True)
    document = exposed(yaml.safe_load(rendered), config, backend)
    front = document["services"]["proxy"]["depends_on"][0]
    port = replicas.LISTEN_PORT if front == replicas.SERVICE else backend.container_port
    conf_file(config.name).write_text(nginx_conf(config, f"{front}:{port}"), encoding="utf-8")
    return render.to_yaml(document)


def remove_key(name: str) -> None:
    """Remove what set_up wrote for this service: its key and its nginx configuration."""
    key_file(name).unlink(missing_ok=True)
    conf_file(name).unlink(missing_ok=True)


def exposed(document: dict[str, Any], config: Config, backend: Backend) -> dict[str, Any]:
    """The rendered compose document with the proxy in front: the service that published the
    address (the model, or the router of its replicas) loses its port, the model servers their
    API-key variable; the proxy publishes the service's address."""
    services = document["services"]
    front = replicas.SERVICE if replicas.SERVICE in services else "model"
    published = services[front].pop("ports")
    for service in services.values():
        if backend.api_key_env and "environment" in service:
            service["environment"].pop(backend.api_key_env, None)
    host_side = published[0].rsplit(":", 1)[0]
    services["proxy"] = {
        "image": IMAGE,
        "depends_on": [front],
        "ports": [f"{host_side}:{LISTEN_PORT}"],
        # A bind mount, not a compose config: Compose copies those in, which a read-only
        # root filesystem refuses.
        "volumes": [f"{conf_file(config.name)}:/etc/toolkit/nginx.conf:ro"],
        "secrets": [{"source": "api_key", "target": "api_key"}],
        **hardening.sidecar_fields(pids_limit=256, mem_limit="256m"),
        "healthcheck": {
            "test": ["CMD", "python3", "-c", _PROXY_HEALTH],
            "interval": "30s",
            "timeout": "5s",
            "retries": 3,
        },
        "restart": "unless-stopped",
        "logging": services[front]["logging"],
    }
    document.setdefault("secrets", {})["api_key"] = {"file": str(key_file(config.name))}
    return document


# Alive: nginx answers (401 without the key is an answer).
_PROXY_HEALTH = (
    "import urllib.request as u, urllib.error as e\n"
    f"try: u.urlopen('http://127.0.0.1:{LISTEN_PORT}/', timeout=3)\n"
    "except e.HTTPError: pass"
)


def ensure_image() -> None:
    """Build the proxy image once (toolkit/lifecycle/sidecar.py)."""
    from toolkit.lifecycle import sidecar

    sidecar.ensure_image(IMAGE, "proxy")
