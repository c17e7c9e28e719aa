"""How the toolkit names what it makes in Docker: images, labels, projects and the cache volume.

Rendering, building, the lifecycle and pushing all derive names from here, so a container made by
`docker compose -f compose/X.yaml up` and one made by `toolkit start X` are the same to `status`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from toolkit.catalog.backends import Backend
    from toolkit.catalog.configs import Config

IMAGE_PREFIX = "toolkit"
LABEL_PREFIX = "io.github.model-serving-toolkit"
CACHE_VOLUME = "toolkit-model-cache"


def image_ref(config: Config, backend: Backend) -> str:
    """The local image: `toolkit/<config>:<backend version>` (`toolkit push` adds registries)."""
    return f"{IMAGE_PREFIX}/{config.name}:{backend.version}"


def project(name: str) -> str:
    """The Compose project name: the config name with characters Compose refuses replaced."""
    return "toolkit-" + name.replace(".", "-")


def label(key: str) -> str:
    return f"{LABEL_PREFIX}.{key}"


def service_filter(name: str | None = None) -> list[str]:
    """Engine label filters that match a service's containers: the config label (which images
    carry too, so one-off containers of the image have it) and the port label, which only the
    compose file sets."""
    return [label("config") + (f"={name}" if name else ""), label("port")]


def image_labels(config: Config, backend: Backend) -> dict[str, str]:
    """OCI and toolkit labels that depend only on the catalog (build adds revision and date)."""
    return {
        "org.opencontainers.image.title": config.name,
        "org.opencontainers.image.description": config.description or config.model,
        "org.opencontainers.image.version": backend.version,
        label("config"): config.name,
        label("model"): config.model,
        label("protocol"): config.protocol.value,
        label("backend"): config.backend,
        label("gpus"): str(config.gpus),
    }
