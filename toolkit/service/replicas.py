"""Replicas of one config behind one endpoint: the compose services they make.

A config with `replicas: N` (or `toolkit start NAME --replicas N`) runs N copies of its server in
its compose project, `replica-1` ... `replica-N`, each on its own GPU set and none publishing a
port, and `router`: PyPI's vllm-router (vLLM's Rust router, images/router/), which publishes the
service's address and sends each request to a replica. Its default policy, `cache_aware`, keeps
requests that share a prompt prefix on the replica whose KV cache already holds it; its health
checks and retries route around a replica that dies, and Docker's restart policy and `toolkit
watch` bring the replica back. toolkit/lifecycle/router.py builds the router's image and counts
the replicas a start asks for.

vllm-router, not a proxy of ours: it is vLLM's own, maintained with it, and its policies,
retries, circuit breakers and health checks are settings, not code. It speaks OpenAI's API, so
replicas are for openai-text configs; a config that spans hosts is one replica.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from toolkit.catalog import names
from toolkit.service import hardening

if TYPE_CHECKING:
    from toolkit.catalog.backends import Backend
    from toolkit.catalog.configs import Config

ROUTER_VERSION = "0.1.17"  # vllm-router, pinned in images/router/requirements.txt
IMAGE_TAG = f"vllm-router-{ROUTER_VERSION}"
IMAGE = f"toolkit/router:{IMAGE_TAG}"
SERVICE = "router"
LISTEN_PORT = 8080
DEFAULT_POLICY = "cache_aware"
# vllm-router's policies that need nothing beyond the workers' URLs (kv_aware needs KV events).
POLICIES = (
    "cache_aware",
    "round_robin",
    "random",
    "power_of_two",
    "consistent_hash",
    "sticky_least_loaded",
)
# Build-time only, as the compose template names them: pip's CA bundle and pip.conf.
BUILD_SECRETS = {
    "ca_bundle": "${TOOLKIT_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}",
    "pip_config": "${TOOLKIT_PIP_CONFIG:-/dev/null}",
}
HEALTH_INTERVAL_S = 5  # the router's own check of each replica (its default is 60 s)


def gpu_sets(ids: list[str], per_replica: int, replicas: int) -> list[list[str]]:
    """The GPU ids split into one set per replica, in order (none on the CPU)."""
    if not per_replica:
        return [[] for _ in range(replicas)]
    return [ids[i * per_replica : (i + 1) * per_replica] for i in range(replicas)]


def router_args(config: Config, workers: list[str], policy: str) -> list[str]:
    """vllm-router's command line in front of these workers (compose and Kubernetes)."""
    return [
        "--host=0.0.0.0",
        f"--port={LISTEN_PORT}",
        f"--policy={policy}",
        # A replica still loading: the model's own load time.
        f"--worker-startup-timeout-secs={config.startup_seconds}",
        f"--health-check-interval-secs={HEALTH_INTERVAL_S}",
        "--worker-urls",
        *workers,
    ]


def spread(
    document: dict[str, Any],
    config: Config,
    backend: Backend,
    sets: list[list[str]],
    policy: str,
) -> dict[str, Any]:
    """The rendered compose document with the model server as one replica per GPU set, none
    publishing a port, and the router publishing the service's address in front of them."""
    services = document["services"]
    model = services.pop("model")
    published = model.pop("ports")
    workers = []
    for number, ids in enumerate(sets, 1):
        replica = copy.deepcopy(model)
        if number > 1:
            replica.pop("build", None)  # one image, built once: replica-1's
        if ids:
            replica["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] = ids
        replica["labels"][names.label("gpus")] = ",".join(ids)
        replica["labels"][names.label("replica")] = f"{number}/{len(sets)}"
        # Where the host reaches this replica itself (its metrics, the start's wait).
        replica["labels"][names.label("replica-port")] = str(backend.container_port)
        services[f"replica-{number}"] = replica
        workers.append(f"http://replica-{number}:{backend.container_port}")
    host_side = published[0].rsplit(":", 1)[0]
    services[SERVICE] = {
        "image": IMAGE,
        "build": {"context": "../images/router", "secrets": list(BUILD_SECRETS)},
        "command": router_args(config, workers, policy),
        "depends_on": [f"replica-{number}" for number in range(1, len(sets) + 1)],
        "ports": [f"{host_side}:{LISTEN_PORT}"],
        **hardening.sidecar_fields(pids_limit=512, mem_limit="512m"),
        "healthcheck": {
            "test": ["CMD", "python3", "-c", _ROUTER_HEALTH],
            "interval": "30s",
            "timeout": "5s",
            "retries": 3,
            "start_period": f"{config.startup_seconds}s",
        },
        "restart": "unless-stopped",
        "logging": model["logging"],
        "labels": {names.label("router"): config.name},
    }
    defined = document.setdefault("secrets", {})
    for key, value in BUILD_SECRETS.items():
        defined.setdefault(key, {"file": value})
    return document


# Alive: the router answers its liveness check (its readiness waits for the replicas).
_ROUTER_HEALTH = (
    f"import urllib.request as u; u.urlopen('http://127.0.0.1:{LISTEN_PORT}/liveness', timeout=3)"
)
