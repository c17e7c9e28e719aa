"""Load time and per-image time of the demo's tiny image pipelines (Stable Diffusion and FLUX) on
this machine's CPU, at the demo's settings (2 steps, float32, 64x48), with time.perf_counter:

    python benchmarks/tiny_image_pipelines.py [MODELS_DIR]   (default .demo/models)

It makes the tiny models first if MODELS_DIR lacks them. Prints the median of 5 generations.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".demo/models")
    subprocess.run([sys.executable, "scripts/make_tiny_models.py", str(root)], check=True)
    import torch
    from diffusers import DiffusionPipeline

    print(f"torch threads: {torch.get_num_threads()}, CPUs: {os.cpu_count()}")
    for name in ("tiny-diffusion", "tiny-flux"):
        started = time.perf_counter()
        pipeline = DiffusionPipeline.from_pretrained(root / name, dtype=torch.float32)
        pipeline.set_progress_bar_config(disable=True)
        loaded = time.perf_counter() - started
        times = []
        for _ in range(5):
            started = time.perf_counter()
            pipeline(prompt="a cat", width=64, height=48, num_inference_steps=2)
            times.append(time.perf_counter() - started)
        print(
            f"{name}: {type(pipeline).__name__} loads in {loaded:.2f} s, "
            f"one 64x48 image in {statistics.median(times):.2f} s (median of 5)"
        )


if __name__ == "__main__":
    main()
