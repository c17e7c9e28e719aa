"""The roles of a multi-node config on Docker hosts: the refusals of `toolkit start --role`, and
the worker compose file rendered from the same descriptors as the head's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from tests.conftest import Run, builtin_text
from toolkit.catalog.configs import Catalog
from toolkit.render import compose as render

CPU_TWO_NODES = (
    builtin_text("demo-vllm")
    + "nodes: 2\n"
    + "engine_args:\n  max-model-len: 512\n  pipeline-parallel-size: 2\n"
    + "  distributed-executor-backend: mp\n"
).replace("engine_args:\n  max-model-len: 512  # the tiny model's positions\n", "", 1)


def test_role_is_refused_for_a_single_node_config(run: Run) -> None:
    result = run("start", "llama3-8b", "--role", "head")
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(
        "--role is for configs that span hosts; llama3-8b has nodes: 1."
    )


def test_head_address_is_refused_without_the_worker_role(run: Run) -> None:
    for extra in ([], ["--role", "head"]):
        result = run("start", "llama3.1-405b_16", *extra, "--head-address", "10.0.0.1")
        assert result.exit_code == 2
        assert result.stderr.strip().endswith(
            "--head-address names the head a worker joins; add --role worker."
        )


def test_a_worker_needs_the_head_address(run: Run) -> None:
    result = run("start", "llama3.1-405b_16", "--role", "worker")
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(
        "--role worker needs --head-address HOST, the head host's address."
    )


def test_the_gpu_worker_joins_the_heads_ray_cluster_on_the_hosts_network(catalog: Catalog) -> None:
    config = catalog["llama3.1-405b_16"]
    head = yaml.safe_load(render.render_compose(catalog, config))["services"]["model"]
    worker = yaml.safe_load(render.render_worker_compose(catalog, config))["services"]["worker"]
    assert worker["entrypoint"] == [
        "ray", "start", "--address=${TOOLKIT_HEAD_ADDRESS:-127.0.0.1}:6379", "--block"
    ]  # fmt: skip
    assert "command" not in worker
    assert head["network_mode"] == worker["network_mode"] == "host"
    assert "ports" not in head  # the host's network: the API listens on the bind address itself
    assert (
        "--host '${TOOLKIT_BIND_ADDRESS:-127.0.0.1}' --port '${TOOLKIT_PORT:-1042}'"
        in (head["command"][0])
    )
    assert worker["image"] == head["image"]
    assert worker["deploy"] == head["deploy"]


def test_the_cpu_worker_runs_vllms_own_multi_node_mode_headless(
    user_catalog: Callable[[str, str], Path],
) -> None:
    catalog = Catalog.load(user_catalog("two-cpu-nodes.yaml", CPU_TWO_NODES))
    config = catalog["two-cpu-nodes"]
    head = yaml.safe_load(render.render_compose(catalog, config))["services"]["model"]
    worker = yaml.safe_load(render.render_worker_compose(catalog, config))["services"]["worker"]
    native = ["--nnodes", "2", "--master-addr", "${TOOLKIT_HEAD_ADDRESS:-127.0.0.1}"]
    for service, rank in ((head, "0"), (worker, "${TOOLKIT_NODE_RANK:-1}")):
        assert service["entrypoint"] == ["python3", "-m", "vllm.entrypoints.cli.main", "serve"]
        words = service["command"]
        assert words[words.index("--node-rank") + 1] == rank
        assert all(word in words for word in native)
    assert worker["command"][-1] == "--headless"
    assert "--headless" not in head["command"]
