"""Engine tests: a real Docker engine, real images built from the real templates, real containers.

In CI (CI=true) a missing engine fails these tests; elsewhere they are skipped with the reason.
Every service a test starts is stopped afterwards, whatever happens.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from toolkit.cli.root import cli
from toolkit.host import engine as docker_engine
from toolkit.host.engine import Engine, sdk_client
from toolkit.paths import REPO_ROOT

BASE_IMAGE = os.environ.get("TOOLKIT_TEST_BASE_IMAGE", "toolkit-local/python:3.11-bookworm")
TORCH = "torch==2.13.0"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/engine/" in str(item.fspath):
            item.add_marker(pytest.mark.engine)


@pytest.fixture(scope="session")
def docker() -> Any:
    """The Docker SDK, for the tests' own look at containers and images."""
    try:
        docker_engine.connect()
    except docker_engine.EngineError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"engine tests must run in CI, and {exc}")
        pytest.skip(str(exc))
    return sdk_client()


@pytest.fixture(scope="session")
def engine_api(docker: Any) -> Engine:
    """The toolkit's own Engine API client, on the same engine."""
    return docker_engine.connect()


def toolkit(
    *args: str,
    catalog: Path | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
) -> Result:
    """The CLI in process, as a user would call it; a user catalog via TOOLKIT_CATALOG."""
    merged = dict(env or {})
    if catalog is not None:
        merged["TOOLKIT_CATALOG"] = str(catalog)
    return CliRunner().invoke(cli, list(args), env=merged, input=input, catch_exceptions=False)


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torch for the images, from the machine's local wheels when it has them (CPU build)."""
    target = tmp_path_factory.mktemp("wheelhouse")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(target),
            TORCH,
        ],
        check=True,
    )
    return target


@pytest.fixture(scope="session")
def base_image(docker: object) -> str:
    subprocess.run(
        [str(REPO_ROOT / "scripts" / "make-base-image.sh"), BASE_IMAGE],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return BASE_IMAGE


def with_local_model(source: Path, name: str, model_dir: Path, catalog: Path) -> Path:
    """Copy config `name` from catalog `source` into `catalog`, its local model at `model_dir`."""
    text = (source / f"{name}.yaml").read_text()
    old = next(line for line in text.splitlines() if line.strip().startswith("local:"))
    catalog.mkdir(parents=True, exist_ok=True)
    (catalog / f"{name}.yaml").write_text(text.replace(old, f"  local: {model_dir}"))
    return catalog


@pytest.fixture(scope="session")
def demo_catalog(tmp_path_factory: pytest.TempPathFactory, tiny_models: Path) -> Path:
    """The demo configs, pointed at this session's tiny models."""
    catalog = tmp_path_factory.mktemp("catalog")
    for name, model in (("demo-image", "tiny-flux"), ("demo-text", "Tiny-Llama")):
        with_local_model(REPO_ROOT / "configs", name, tiny_models / model, catalog)
    return catalog


def build(name: str, catalog: Path, wheelhouse: Path, base_image: str) -> None:
    """`toolkit build NAME` from a test catalog, offline: the local base image and torch wheel."""
    result = toolkit(
        "build", name, "--wheelhouse", str(wheelhouse), "--base-image", base_image,
        catalog=catalog,
    )  # fmt: skip
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="session")
def built(docker: object, wheelhouse: Path, base_image: str, demo_catalog: Path) -> Path:
    """Both demo images, built once per session with `toolkit build` from the real templates."""
    for name in ("demo-image", "demo-text"):
        build(name, demo_catalog, wheelhouse, base_image)
    return demo_catalog


VLLM = "demo-vllm"  # the real vLLM, built for CPUs


@pytest.fixture(scope="session")
def vllm_catalog(tmp_path_factory: pytest.TempPathFactory, tiny_models: Path) -> Path:
    catalog = tmp_path_factory.mktemp("vllm-catalog")
    return with_local_model(REPO_ROOT / "configs", VLLM, tiny_models / "Tiny-Llama", catalog)


@pytest.fixture(scope="session")
def vllm_built(docker: object, wheelhouse: Path, base_image: str, vllm_catalog: Path) -> Path:
    """The CPU vLLM image, built once per session with `toolkit build`."""
    build(VLLM, vllm_catalog, wheelhouse, base_image)
    return vllm_catalog


def leftovers(docker: object, project: str) -> list[str]:
    """Containers, networks and anonymous volumes of a compose project that still exist."""
    label = {"label": f"com.docker.compose.project={project}"}
    found = [f"container {c.name}" for c in docker.containers.list(all=True, filters=label)]
    found += [f"network {n.name}" for n in docker.networks.list(filters=label)]
    found += [
        f"volume {v.name}"
        for v in docker.volumes.list(filters=label)
        if v.name != "toolkit-model-cache"
    ]
    return found


@pytest.fixture
def stopped_after(docker: object) -> Iterator[list[tuple[str, Path | None]]]:
    """Tests append (config, catalog) of what they start; it is stopped whatever happens."""
    started: list[tuple[str, Path | None]] = []
    yield started
    for name, catalog in started:
        toolkit("stop", name, catalog=catalog)
