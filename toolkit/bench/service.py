"""What the JSON records about a catalog service: its config, engine arguments and image."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from toolkit.service.image import image_ref

if TYPE_CHECKING:
    from toolkit.catalog.configs import Catalog, Config
    from toolkit.lifecycle.running import Service


def describe(service: Service, catalog: Catalog, config: Config | None) -> dict[str, Any]:
    """The config, its engine flags and its local image with the image's digest where known."""
    from toolkit.host import engine as dockerapi
    from toolkit.service.server import engine_flags

    info: dict[str, Any] = {
        "config": service.name,
        "backend": None,
        "engine_args": None,
        "image": None,
        "image_digest": None,
    }
    if config is None:
        return info  # started from another catalog: the labels name it, nothing more is known
    backend = catalog.backend(config)
    ref = image_ref(config, backend)
    info |= {"backend": config.backend, "engine_args": engine_flags(config, backend), "image": ref}
    try:
        record = dockerapi.connect().image_record(ref)
    except dockerapi.EngineError:
        return info  # the digest is recorded where known; a missing engine is not an error here
    if record:
        info["image_digest"] = (record.get("RepoDigests") or [record["Id"]])[0]
    return info
