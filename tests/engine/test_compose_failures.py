"""A failing Compose step fails the command: build, up and down each exit 1 with one sentence.

The causes are real: a base image no registry here has, a memory limit the engine refuses, a
Docker CLI context that does not exist (Compose, like the docker CLI, honours DOCKER_CONTEXT).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.engine.conftest import leftovers, toolkit
from toolkit.catalog.configs import Catalog
from toolkit.host.compose import compose_command
from toolkit.paths import REPO_ROOT
from toolkit.service.image import image_ref

BASE = "toolkit-local/python:3.11-bookworm"


def test_a_failing_build_exits_1_and_never_says_built(docker: Any) -> None:
    result = toolkit("build", "demo-text", "--base-image", "toolkit-local/missing:1")
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1, result.output
    assert not any(line.startswith("built ") for line in lines), result.output
    catalog = Catalog.load()
    ref = image_ref(catalog["demo-text"], catalog.backend(catalog["demo-text"]))
    assert lines[-1] == (
        f"error: building {ref} failed ({lines[-2].strip()}); the build output above says where."
    )
    assert "toolkit-local/missing:1" in result.output


def _catalog(tmp_path: Path, name: str, **fields: object) -> Path:
    """A copy of demo-text under another name, its local model an empty folder."""
    config = yaml.safe_load((REPO_ROOT / "configs" / "demo-text.yaml").read_text())
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    config |= {"source": {"local": str(model)}, "port": 3977, **fields}
    catalog = tmp_path / "catalog"
    catalog.mkdir(exist_ok=True)
    (catalog / f"{name}.yaml").write_text(yaml.safe_dump(config))
    return catalog


@pytest.fixture
def tagged(docker: Any) -> Iterator[list[str]]:
    """Refs tests tag the local base image as (a stand-in image); untagged afterwards."""
    refs: list[str] = []
    yield refs
    for ref in refs:
        docker.images.remove(ref)


def test_a_failing_up_exits_1_and_leaves_nothing(
    docker: Any, tmp_path: Path, tagged: list[str]
) -> None:
    catalog = _catalog(tmp_path, "compose-up-fails", memory_limit="1k")
    loaded = Catalog.load(catalog)
    config = loaded["compose-up-fails"]
    ref = image_ref(config, loaded.backend(config))
    docker.images.get(BASE).tag(ref)
    tagged.append(ref)
    result = toolkit("start", "compose-up-fails", catalog=catalog)
    assert (result.exit_code, result.output) == (
        1,
        "error: docker compose up did not start compose-up-fails (Error response from daemon: "
        "Minimum memory limit allowed is 6MB); nothing was left running.\n",
    )
    assert leftovers(docker, config.project) == []


def test_a_failing_down_exits_1(docker: Any, tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, "compose-down-fails")
    env = {"DOCKER_CONTEXT": "toolkit-test-missing-context"}
    compose = subprocess.run(
        [*compose_command(), "-p", "toolkit-compose-down-fails", "down"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert compose.returncode == 1
    reason = compose.stderr.strip().splitlines()[-1]
    assert "context not found" in reason
    result = toolkit("stop", "compose-down-fails", catalog=catalog, env=env)
    assert (result.exit_code, result.output) == (
        1,
        f"error: docker compose down failed for compose-down-fails ({reason}); "
        "run 'toolkit stop compose-down-fails' again once that is fixed.\n",
    )
