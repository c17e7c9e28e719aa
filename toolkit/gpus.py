"""The host's NVIDIA GPUs: NVML (nvidia-ml-py) first, nvidia-smi as the fallback."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

MIB = 2**20
GIB = 2**30


@dataclass(frozen=True)
class Gpu:
    index: str
    name: str
    total_gib: float
    free_gib: float


def discover() -> list[Gpu]:
    """Every NVIDIA GPU on this host with its memory; an empty list where there is none."""
    return _nvml() or _nvidia_smi()


def _nvml() -> list[Gpu]:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no library, no driver: try nvidia-smi
        return []
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            gpus.append(
                Gpu(
                    str(i),
                    name.decode() if isinstance(name, bytes) else str(name),
                    memory.total / GIB,
                    memory.free / GIB,
                )
            )
        return gpus
    finally:
        pynvml.nvmlShutdown()


def driver_version() -> str | None:
    """The NVIDIA driver's version (e.g. 580.65.06): NVML first, nvidia-smi as the fallback."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no library, no driver
        return _smi_driver()
    try:
        version = pynvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else str(version)
    finally:
        pynvml.nvmlShutdown()


def _smi_driver() -> str | None:
    if not shutil.which("nvidia-smi"):
        return None
    query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
    try:
        result = subprocess.run(query, capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = result.stdout.split()
    return lines[0] if lines else None


def parse_nvidia_smi(output: str) -> list[Gpu]:
    """Rows of nvidia-smi's CSV query (index, name, total and free memory in MiB, no header)."""
    gpus = []
    for line in output.strip().splitlines():
        index, name, total, free = (part.strip() for part in line.split(","))
        gpus.append(Gpu(index, name, float(total) * MIB / GIB, float(free) * MIB / GIB))
    return gpus


def _nvidia_smi() -> list[Gpu]:
    if not shutil.which("nvidia-smi"):
        return []
    query = [
        "nvidia-smi",
        "--query-gpu=index,name,memory.total,memory.free",
        "--format=csv,noheader,nounits",
    ]
    try:
        result = subprocess.run(query, capture_output=True, text=True, timeout=20, check=True)
        return parse_nvidia_smi(result.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
