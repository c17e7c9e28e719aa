"""Two demo configs under their own names, built: for the hardening and proxy engine tests.

Copies of the demo configs under their own names, so the shared demo images stay untouched.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.engine.conftest import build, with_local_model
from toolkit.paths import REPO_ROOT

# Each config's copy: the demo config it copies and the tiny model (tests/conftest.py) it serves.
DEMOS = {
    "harden-demo-image": ("demo-image", "tiny-flux"),
    "harden-demo-text": ("demo-text", "Tiny-Llama"),
}


def readable_copy(source: Path, target: Path) -> Path:
    """A tiny model copied with every file readable by the non-root server."""
    shutil.copytree(source, target)
    subprocess.run(["chmod", "-R", "a+rX", str(target)], check=True)
    return target


@pytest.fixture(scope="session")
def hardened(
    docker: Any,
    tmp_path_factory: pytest.TempPathFactory,
    tiny_models: Path,
    wheelhouse: Path,
    base_image: str,
) -> Path:
    """A catalog of the two demo configs under their harden- names, their images built."""
    root = tmp_path_factory.mktemp("harden")
    catalog = root / "catalog"
    source = root / "source"
    source.mkdir()
    for name, (demo, model) in DEMOS.items():
        shutil.copy(REPO_ROOT / "configs" / f"{demo}.yaml", source / f"{name}.yaml")
        # The session's tiny models are readable by all (the non-root server reads them).
        with_local_model(source, name, tiny_models / model, catalog)
        build(name, catalog, wheelhouse, base_image)
    return catalog
