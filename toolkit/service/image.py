"""The image a config builds to: its local reference and the labels that describe it.

Rendering, building, pushing, bundles and the lifecycle all derive them here, so a container made
by `docker compose -f compose/X.yaml up` and one made by `toolkit start X` are the same to `status`.
"""

from __future__ import annotations

from toolkit.catalog.backends import Backend
from toolkit.catalog.configs import Config
from toolkit.catalog.names import IMAGE_PREFIX, label


def image_ref(config: Config, backend: Backend) -> str:
    """The local image: `toolkit/<config>:<backend version>` (`toolkit push` adds registries)."""
    return f"{IMAGE_PREFIX}/{config.name}:{backend.version}"


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
