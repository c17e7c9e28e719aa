"""How the toolkit names what it makes in Docker: images, labels, projects and the cache volume.

Rendering, building, the lifecycle and pushing all derive names from here, so a container made by
`docker compose -f compose/X.yaml up` and one made by `toolkit start X` are the same to `status`.
"""

from __future__ import annotations

import json

from toolkit.paths import state_dir

IMAGE_PREFIX = "toolkit"
LABEL_PREFIX = "io.github.model-serving-toolkit"
CACHE_VOLUME = "toolkit-model-cache"


def project(name: str) -> str:
    """The Compose project name: the config name with characters Compose refuses replaced."""
    return "toolkit-" + name.replace(".", "-")


def repository(registry: str, namespace: str, name: str) -> str:
    """Where a config's image lives in a registry: REGISTRY/NAMESPACE/<config>."""
    return f"{registry.rstrip('/')}/{namespace}/{name}"


PUSHED_RECORD = "pushed.json"  # in the state directory: REPOSITORY:TAG -> the digest pushed


def record_pushed(digests: dict[str, str]) -> None:
    """Remember what `toolkit push` pushed, so `render --target kubernetes` can pin digests."""
    path = state_dir() / PUSHED_RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(pushed_digests() | digests, indent=1, sort_keys=True) + "\n")


def pushed_digests() -> dict[str, str]:
    """REPOSITORY:TAG -> digest for every image pushed from here (none recorded: empty)."""
    path = state_dir() / PUSHED_RECORD
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in recorded.items()} if isinstance(recorded, dict) else {}


def label(key: str) -> str:
    return f"{LABEL_PREFIX}.{key}"


def service_filter(name: str | None = None) -> list[str]:
    """Engine label filters that match a service's containers: the config label (which images
    carry too, so one-off containers of the image have it) and the port label, which only the
    compose file sets."""
    return [label("config") + (f"={name}" if name else ""), label("port")]
