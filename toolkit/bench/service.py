"""What the JSON records about a catalog service: its config, engine arguments and image."""

from __future__ import annotations

from typing import Any

from toolkit.catalog import Catalog, Config
from toolkit.errors import ToolkitError


def describe(catalog: Catalog, config: Config) -> dict[str, Any]:
    from toolkit import render

    info: dict[str, Any] = {
        "config": config.name,
        "backend": str(config.backend),
        "engine_args": render.engine_args(config),
        "image": render.image_ref(catalog, config),
        "image_digest": None,
    }
    try:
        from docker.errors import DockerException

        from toolkit import engine

        containers = engine.running(engine.client(), config.name)
        if containers:
            image = containers[0].image
            info["image_digest"] = (image.attrs.get("RepoDigests") or [image.id])[0]
    except (ToolkitError, DockerException, OSError):
        pass  # the digest is recorded where known; a missing engine is not an error here
    return info
