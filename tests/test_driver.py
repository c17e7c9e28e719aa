"""The driver preflight: an image's CUDA needs a new enough NVIDIA driver.

No GPU runs here, so NVML is replaced by a module that answers from tests/fixtures/nvml/*.json,
in the shapes nvidia-ml-py returns: h100-driver-580.json was recorded on a lent H100 host, where
the same discovery, `plan --host` and preflight also ran for real; h100-driver-570.json is that
recording with an older driver, which the preflight must refuse.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from toolkit.catalog.configs import Catalog
from toolkit.host import engine as docker_engine
from toolkit.host import gpus
from toolkit.lifecycle import preflight
from toolkit.paths import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "nvml"
CATALOG = Catalog.load()


def recorded_nvml(path: Path) -> types.ModuleType:
    answers = json.loads(path.read_text())
    devices = answers["devices"]
    module = types.ModuleType("pynvml")
    module.nvmlInit = lambda: None
    module.nvmlShutdown = lambda: None
    module.nvmlSystemGetDriverVersion = lambda: answers["nvmlSystemGetDriverVersion"]
    module.nvmlDeviceGetCount = lambda: len(devices)
    module.nvmlDeviceGetHandleByIndex = lambda i: devices[i]
    module.nvmlDeviceGetName = lambda d: d["name"]
    module.nvmlDeviceGetMemoryInfo = lambda d: types.SimpleNamespace(
        total=d["total"], free=d["free"]
    )
    return module


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch):
    def use(name: str) -> None:
        monkeypatch.setitem(sys.modules, "pynvml", recorded_nvml(FIXTURES / f"{name}.json"))

    return use


def test_the_driver_and_gpus_come_from_nvml(nvml) -> None:
    nvml("h100-driver-570")
    assert gpus.driver_version() == "570.133.20"
    (card,) = gpus.discover()
    assert (card.index, card.name, round(card.total_gib, 1)) == ("0", "NVIDIA H100 80GB HBM3", 79.6)


def test_plan_host_plans_against_the_recorded_gpu(nvml, run) -> None:
    nvml("h100-driver-580")
    result = run("plan", "llama3-8b", "--host")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == (
        "llama3-8b (vllm) on 1 GPU(s) of 79.18 GiB, utilization 0.90"
    ), "the free memory NVML reported, as on the GPU host itself"
    missing = run("plan", "llama3-70b_4", "--host", "--gpus", "0,1,2,3")
    assert (missing.exit_code, missing.stderr) == (
        2,
        "error: GPU id(s) 1,2,3 do not exist on this host (it has 0); pick others with --gpus.\n",
    )


def test_a_driver_older_than_the_images_cuda_is_refused(nvml) -> None:
    config = CATALOG["llama3-8b"]
    needed = CATALOG.backend(config).min_driver
    assert needed == 580, "vLLM v0.33.0's image is CUDA 13 (configs/_backends.yaml)"
    nvml("h100-driver-570")
    with pytest.raises(docker_engine.EngineError) as refused:
        preflight.check_driver(config, needed, gpus.driver_version())
    assert str(refused.value) == (
        "llama3-8b's image needs NVIDIA driver 580 or newer, and this host has 570.133.20; "
        "upgrade the driver, or build on an image for an older CUDA (e.g. --base-image with "
        "vLLM's -cu129 tag)."
    )
    nvml("h100-driver-580")
    assert gpus.driver_version() == "580.159.04"
    preflight.check_driver(config, needed, gpus.driver_version())


def test_backends_without_cuda_pins_check_no_driver() -> None:
    config = CATALOG["flux.1-dev"]
    assert CATALOG.backend(config).min_driver is None
    preflight.check_driver(config, None, "470.00")
