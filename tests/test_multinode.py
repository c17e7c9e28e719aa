"""Configs that span hosts: `nodes:` in the catalog, and the plan with pipeline stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import Run, builtin_text
from toolkit.catalog.configs import Catalog, CatalogError, _load_backends
from toolkit.paths import BACKENDS_FILE, REPO_ROOT
from toolkit.plan import memory as plan

SIXTEEN = builtin_text("llama3.1-405b_16")

BAD = {
    "product short of the GPUs": (
        SIXTEEN.replace("pipeline-parallel-size: 2", "pipeline-parallel-size: 1"),
        "bad.yaml: field 'engine_args.pipeline-parallel-size': tensor-parallel-size 8 x "
        "pipeline-parallel-size 1 = 8 disagrees with gpus 8 x nodes 2 = 16; make the product "
        "the total GPU count (TP per node, PP across nodes).",
    ),
    "nodes without pipeline stages": (
        SIXTEEN.replace("  pipeline-parallel-size: 2\n", "").replace("nodes: 2", "nodes: 3"),
        "bad.yaml: field 'engine_args.pipeline-parallel-size': tensor-parallel-size 8 x "
        "pipeline-parallel-size 1 = 8 disagrees with gpus 8 x nodes 3 = 24; make the product "
        "the total GPU count (TP per node, PP across nodes).",
    ),
    "a stage count that is not a number": (
        SIXTEEN.replace("pipeline-parallel-size: 2", "pipeline-parallel-size: two"),
        "bad.yaml: field 'engine_args.pipeline-parallel-size': 'two' is not a positive integer.",
    ),
    "a backend that cannot span hosts": (
        builtin_text("flux.1-dev") + "nodes: 2\n",
        "bad.yaml: field 'nodes': the diffusers backend cannot span hosts; set nodes: 1.",
    ),
    "no nodes": (
        SIXTEEN.replace("nodes: 2", "nodes: 0"),
        "bad.yaml: field 'nodes': Input should be greater than or equal to 1, got 0.",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_parallelism_that_does_not_use_every_gpu_is_refused(
    run: Run, user_catalog, case: str
) -> None:
    text, message = BAD[case]
    result = run("--catalog", str(user_catalog("bad.yaml", text)), "list")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and result.stderr.endswith(f"/{message}\n")
    assert result.stderr.count("\n") == 1, "one sentence, one line"


def test_a_multi_node_backend_must_say_how_it_splits_and_serves(tmp_path: Path) -> None:
    """The descriptor, not the backend's name, decides who spans hosts; it must be complete."""
    data = yaml.safe_load((REPO_ROOT / "configs" / BACKENDS_FILE).read_text(encoding="utf-8"))
    assert [name for name, entry in data.items() if entry.get("multi_node")] == ["vllm"]
    del data["vllm"]["pipeline_flag"], data["vllm"]["entrypoint"]
    data["vllm"]["cpu"]["multi_node"] = False  # the variant inherits the gap; one problem here
    path = tmp_path / BACKENDS_FILE
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(CatalogError) as raised:
        _load_backends(path)
    assert str(raised.value) == (
        f"{path}: field 'vllm.multi_node': a multi-node backend must also set pipeline_flag "
        "and entrypoint."
    )


def test_gpus_count_one_node_and_nodes_multiply_them(catalog: Catalog) -> None:
    config = catalog["llama3.1-405b_16"]
    assert (config.gpus, config.nodes, config.total_gpus) == (8, 2, 16)
    assert catalog["llama3-8b"].nodes == 1, "one host unless a config says otherwise"


def test_405b_in_bf16_fits_two_hosts_of_eight_80gb_gpus(run: Run) -> None:
    result = run("plan", "llama3.1-405b_16", "--json")
    assert result.exit_code == 0, result.stdout
    verdict = json.loads(result.stdout)
    assert (verdict["nodes"], verdict["gpus"], verdict["fits"]) == (2, 8, True)
    # 405.9e9 parameters x 2 bytes = 756 GiB over TP 8 x PP 2 (63 of 126 layers per stage).
    assert verdict["per_gpu"]["weights_gib"] == pytest.approx(756.0 / 16, rel=0.01)
    table = run("plan", "llama3.1-405b_16").stdout.splitlines()
    assert table[0] == (
        "llama3.1-405b_16 (vllm) on 2 nodes x 8 GPU(s) of 79.22 GiB, utilization 0.95"
    )
    assert table[-1] == "FITS"


def test_pipeline_stages_divide_weights_and_kv_and_one_host_is_not_enough(
    catalog: Catalog,
) -> None:
    config = catalog["llama3.1-405b_16"]
    backend = catalog.backend(config)
    two_hosts = plan.plan(config, backend)
    one_host = plan.plan(config.model_copy(update={"nodes": 1}), backend)
    assert two_hosts.per_gpu.weights_gib == pytest.approx(
        one_host.per_gpu.weights_gib / 2, rel=0.01
    )
    assert two_hosts.per_gpu.kv_needed_gib == pytest.approx(
        one_host.per_gpu.kv_needed_gib / 2, rel=0.01
    )
    assert not one_host.fits, "755 GiB of bf16 weights cannot fit 8 x 80 GB"
