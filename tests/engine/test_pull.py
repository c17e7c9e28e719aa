"""`toolkit pull` in the real container of a built image, into the real cache volume, from a
real Hub mirror (olah, offline; tests/hubmirror.py) reached over the Docker bridge; then
`toolkit start` with the mirror gone: the cached config starts offline."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine.conftest import toolkit
from tests.hubmirror import commit_files, olah_mirror
from tests.servers import free_port
from toolkit.catalog import names
from toolkit.paths import REPO_ROOT

NAME = "pull-demo-hf"
REPO = "pull-test/tiny-flux"


def bridge_gateway(docker: Any) -> str:
    """The host's address on the default bridge (older engines name only the subnet)."""
    config = docker.networks.get("bridge").attrs["IPAM"]["Config"][0]
    return str(config.get("Gateway") or ipaddress.ip_network(config["Subnet"])[1])


@pytest.fixture
def catalog(docker: Any, built: Path, tmp_path: Path) -> Iterator[Path]:
    """demo-image as NAME, loading REPO from the Hub cache, with demo-image's image tagged."""
    text = (REPO_ROOT / "configs" / "demo-image.yaml").read_text()
    local = next(line for line in text.splitlines() if line.strip().startswith("local:"))
    text = text.replace(local, f"  hf: {REPO}\n  revision: main")
    text = text.replace("port: 2042", f"port: {free_port()}")
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / f"{NAME}.yaml").write_text(text)
    image = docker.images.get("toolkit/demo-image:0.42.1")
    image.tag(f"toolkit/{NAME}", "0.42.1")
    try:
        yield tmp_path / "catalog"
    finally:
        toolkit("stop", NAME, catalog=tmp_path / "catalog")
        docker.containers.run(
            image.id,
            entrypoint=[
                "rm",
                "-rf",
                "/cache/huggingface/hub/models--pull-test--tiny-flux",
                f"/cache/locks/{NAME}.json",
            ],
            volumes={names.CACHE_VOLUME: {"bind": "/cache", "mode": "rw"}},
            user="0",
            remove=True,
        )
        docker.images.remove(f"toolkit/{NAME}:0.42.1")


def test_pull_fills_the_cache_volume_and_start_runs_offline_from_it(
    docker: Any, catalog: Path, tiny_models: Path, tmp_path: Path
) -> None:
    pipeline = tiny_models / "tiny-flux"
    files = {
        str(p.relative_to(pipeline)): p.read_bytes() for p in pipeline.rglob("*") if p.is_file()
    }
    lfs = {name for name in files if name.endswith(".safetensors")}
    with olah_mirror(tmp_path / "hub", bind=bridge_gateway(docker)) as (mirrors, proxy):
        commit = commit_files(mirrors / "models" / REPO, files, lfs)
        pulled = toolkit("pull", NAME, catalog=catalog, env={"HF_ENDPOINT": proxy.url})
        assert pulled.exit_code == 0, pulled.output
        assert pulled.stdout.startswith(
            f"{NAME}: {REPO} at commit {commit[:12]} is in the model cache ("
        )
        assert pulled.stdout.endswith(f"file(s)); the lock is /cache/locks/{NAME}.json.\n")
    started = toolkit("start", NAME, catalog=catalog, env={"HF_ENDPOINT": "http://127.0.0.1:9"})
    assert started.exit_code == 0, started.output
    (container,) = docker.containers.list(filters={"label": f"{names.label('config')}={NAME}"})
    assert "HF_HUB_OFFLINE=1" in container.attrs["Config"]["Env"]
