"""The images of the services that stand beside a model server: the keyed proxy and the router.

Neither is generated: one image of each serves every config (images/proxy/, images/router/). Each
is built once, on first use, from TOOLKIT_BASE_IMAGE (default: the pinned python base), through
Compose's BuildKit client as toolkit.release.build does, with the CA bundle and pip.conf as
build secrets so a TLS-intercepting proxy or an index mirror works and neither lands in a layer.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError
from toolkit.paths import data_root


class SidecarError(ToolkitError):
    """A proxy or router image could not be built."""


def ensure_image(image: str, context: str) -> None:
    """Build `image` from images/<context>/ unless the engine holds it already."""
    from toolkit.host.compose import last_line, run_compose
    from toolkit.host.engine import connect
    from toolkit.release.build import DEFAULT_CA_BUNDLE
    from toolkit.render import compose as render

    if connect().image_exists(image):
        return
    secrets = {
        "ca_bundle": os.environ.get("TOOLKIT_CA_BUNDLE", DEFAULT_CA_BUNDLE),
        "pip_config": os.environ.get("TOOLKIT_PIP_CONFIG", os.devnull),
    }
    build: dict[str, Any] = {"context": str(data_root() / "images" / context)}
    build["secrets"] = list(secrets)
    if os.environ.get("TOOLKIT_BASE_IMAGE"):
        build["args"] = {"BASE_IMAGE": os.environ["TOOLKIT_BASE_IMAGE"]}
    spec = {
        "name": f"toolkit-{context}-build",
        "services": {context: {"image": image, "build": build}},
        "secrets": {
            key: {"file": path if Path(path).is_file() else os.devnull}
            for key, path in secrets.items()
        },
    }
    with tempfile.TemporaryDirectory(prefix=f"toolkit-{context}-") as scratch:
        spec_file = Path(scratch) / "build.yaml"
        spec_file.write_text(render.to_yaml(spec), encoding="utf-8")
        result = run_compose(["-f", str(spec_file), "build"], capture=True)
    if result.returncode != 0:
        raise SidecarError(
            f"building the {context} image {image} failed ({last_line(result)}); rerun to see why."
        )
