"""The host's NVIDIA GPUs: NVML (nvidia-ml-py) first, nvidia-smi as the fallback."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from toolkit.errors import ToolkitError

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


def select(host: list[Gpu], ids: list[str] | None, error: type[ToolkitError]) -> list[Gpu]:
    """The GPUs of `host` these ids name, in their order (every GPU for None); an id the host
    lacks is refused as `error` (a usage error for `plan`, a failed check for `start`)."""
    by_index = {gpu.index: gpu for gpu in host}
    unknown = [i for i in ids or [] if i not in by_index]
    if unknown:
        raise error(
            f"GPU id(s) {','.join(unknown)} do not exist on this host (it has "
            f"{','.join(by_index)}); pick others with --gpus."
        )
    return list(host) if ids is None else [by_index[i] for i in ids]


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


@dataclass(frozen=True)
class Usage:
    """A GPU's live figures, for `toolkit metrics`."""

    index: str
    name: str
    memory_used_gib: float
    memory_total_gib: float
    utilization_percent: float
    power_watts: float | None  # None where the board does not report it


def usage() -> list[Usage]:
    """Every NVIDIA GPU's memory, utilisation and power: NVML first, nvidia-smi as the fallback."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no library, no driver: try nvidia-smi
        return _smi_usage()
    try:
        return nvml_usage(pynvml)
    finally:
        pynvml.nvmlShutdown()


def nvml_usage(nvml: Any) -> list[Usage]:
    """Read the figures through an initialised NVML binding (pynvml's functions)."""
    found = []
    for i in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(i)
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        name = nvml.nvmlDeviceGetName(handle)
        try:
            power: float | None = nvml.nvmlDeviceGetPowerUsage(handle) / 1000  # milliwatts
        except nvml.NVMLError:
            power = None
        found.append(
            Usage(
                str(i),
                name.decode() if isinstance(name, bytes) else str(name),
                round(memory.used / GIB, 2),
                round(memory.total / GIB, 2),
                float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
                power,
            )
        )
    return found


USAGE_QUERY = "index,name,memory.used,memory.total,utilization.gpu,power.draw"


def parse_smi_usage(output: str) -> list[Usage]:
    """Rows of `nvidia-smi --query-gpu=USAGE_QUERY --format=csv,noheader,nounits`."""
    found = []
    for line in output.strip().splitlines():
        index, name, used, total, busy, power = (part.strip() for part in line.split(","))
        found.append(
            Usage(
                index,
                name,
                round(float(used) * MIB / GIB, 2),
                round(float(total) * MIB / GIB, 2),
                float(busy),
                None if power in ("[N/A]", "[Not Supported]") else float(power),
            )
        )
    return found


def _smi_usage() -> list[Usage]:
    if not shutil.which("nvidia-smi"):
        return []
    query = ["nvidia-smi", f"--query-gpu={USAGE_QUERY}", "--format=csv,noheader,nounits"]
    try:
        result = subprocess.run(query, capture_output=True, text=True, timeout=20, check=True)
        return parse_smi_usage(result.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
