"""First against second start of the CPU vLLM service, with its compile caches on the cache volume.

vLLM compiles the model with torch.compile before it answers, and keeps the result in
VLLM_CACHE_ROOT (and Inductor's in TORCHINDUCTOR_CACHE_DIR). Inside the container those caches
die with it; on the cache volume a re-created container finds them. For each layout this runs
`toolkit start demo-vllm` (built beforehand: `toolkit build demo-vllm`) twice, stopping (which
removes the container) in between, and times each start until the model answers, with
time.perf_counter. The volume layout uses a fresh directory on the volume, so its first start is
cold; the directory is removed afterwards.

    PYTHONPATH=. .venv/bin/python benchmarks/vllm_restart.py --model-dir .demo/models/tiny-llama \
        [--port 4042] [--no-control]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from toolkit.catalog import names
from toolkit.catalog.configs import Catalog
from toolkit.host.engine import sdk_client
from toolkit.paths import REPO_ROOT
from toolkit.service.image import image_ref

NAME = "demo-vllm"


def catalog_with(directory: Path, model_dir: Path, env: dict[str, str]) -> Path:
    """A user catalog holding demo-vllm, its model at model_dir and env added."""
    text = (REPO_ROOT / "configs" / f"{NAME}.yaml").read_text(encoding="utf-8")
    local = next(line for line in text.splitlines() if line.strip().startswith("local:"))
    text = text.replace(local, f"  local: {model_dir.resolve()}")
    extra = "".join(f'  {key}: "{value}"\n' for key, value in env.items())
    text = text.replace("env:\n", "env:\n" + extra, 1)
    (directory / f"{NAME}.yaml").write_text(text, encoding="utf-8")
    return directory


def timed_start(catalog: Path, port: int) -> float:
    toolkit = [sys.executable, "-m", "toolkit"]
    env = {**os.environ, "TOOLKIT_CATALOG": str(catalog)}
    began = time.perf_counter()
    try:
        subprocess.run([*toolkit, "start", NAME, "--port", str(port)], env=env, check=True)
        return time.perf_counter() - began
    finally:
        subprocess.run([*toolkit, "stop", NAME], env=env, check=False, capture_output=True)


def remove_from_volume(path: str) -> None:
    catalog = Catalog.load()
    config = catalog[NAME]
    sdk_client().containers.run(
        image_ref(config, catalog.backend(config)),
        entrypoint=["rm", "-rf", path],
        command=[],
        volumes={names.CACHE_VOLUME: {"bind": "/cache", "mode": "rw"}},
        remove=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / ".demo/models/tiny-llama")
    parser.add_argument("--port", type=int, default=4042)
    parser.add_argument("--no-control", action="store_true", help="skip the in-container layout")
    args = parser.parse_args()

    scratch = f"/cache/bench-{uuid.uuid4().hex[:12]}"
    layouts = {
        "caches on the volume": {
            "VLLM_CACHE_ROOT": f"{scratch}/vllm",
            "TORCHINDUCTOR_CACHE_DIR": f"{scratch}/inductor",
        }
    }
    if not args.no_control:
        layouts["caches in the container"] = {}
    rows = []
    try:
        for layout, env in layouts.items():
            with tempfile.TemporaryDirectory(prefix="vllm-restart-") as directory:
                catalog = catalog_with(Path(directory), args.model_dir, env)
                first = timed_start(catalog, args.port)
                second = timed_start(catalog, args.port)
            rows.append((layout, first, second))
    finally:
        remove_from_volume(scratch)
    print(f"{'layout':<26}{'first s':>9}{'second s':>10}{'saved s':>9}")
    for layout, first, second in rows:
        print(f"{layout:<26}{first:>9.1f}{second:>10.1f}{first - second:>9.1f}")


if __name__ == "__main__":
    main()
