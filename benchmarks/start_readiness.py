"""How long after the model is ready does the start command return?

For a config (default: demo-image, built beforehand), runs in turn `toolkit start` and
`docker compose up -d --wait` on the same rendered file with the same variables. A poller asks
the server for its model list every 20 ms; the figure is the time from its first success (the
server is ready) to the command's return. Medians of --runs runs each, with time.perf_counter.

    .venv/bin/python benchmarks/start_readiness.py [--config demo-image] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from toolkit.catalog.configs import Catalog
from toolkit.host import engine as docker_engine
from toolkit.host.compose import compose_command
from toolkit.lifecycle import preflight
from toolkit.lifecycle import stop as stopping
from toolkit.paths import REPO_ROOT
from toolkit.protocols import probe as protocols
from toolkit.render import compose as render


class ReadyWatcher(threading.Thread):
    """Records when the server first lists its model."""

    def __init__(self, protocol: str, url: str, model: str) -> None:
        super().__init__(daemon=True)
        self.protocol, self.url, self.model = protocol, url, model
        self.ready_at: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            if protocols.model_listed(self.protocol, self.url, self.model, timeout=0.5):
                self.ready_at = time.perf_counter()
                return
            time.sleep(0.02)


def one_run(name: str, use_toolkit: bool) -> float:
    catalog = Catalog.load()
    config = catalog[name]
    launch = preflight.checks(docker_engine.connect(), catalog, config, preflight.StartOptions())
    compose_file = Path(tempfile.mkdtemp()) / f"{name}.yaml"
    compose_file.write_text(render.render_compose(catalog, config), encoding="utf-8")
    watcher = ReadyWatcher(config.protocol.value, launch.service.url, config.model)
    watcher.start()
    if use_toolkit:
        command = [str(REPO_ROOT / ".venv/bin/toolkit"), "start", name]
        env = None
    else:
        command = [
            *compose_command(),
            "--project-directory",
            str(REPO_ROOT / "compose"),
            "-f",
            str(compose_file),
            "-p",
            config.project,
            "up",
            "-d",
            "--wait",
        ]
        env = launch.env
    try:
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, **(env or {})})
        returned = time.perf_counter()
        watcher.join(timeout=30)
        if watcher.ready_at is None:
            raise RuntimeError("the command returned before the model was listed")
        return returned - watcher.ready_at
    finally:
        watcher.stop.set()
        stopping.stop(config.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="demo-image")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"toolkit start": [], "compose up --wait": []}
    for _ in range(args.runs):
        results["toolkit start"].append(one_run(args.config, use_toolkit=True))
        results["compose up --wait"].append(one_run(args.config, use_toolkit=False))
    print(
        f"{args.config}: seconds from the model being listed to the command returning "
        f"(median of {args.runs}, min-max)"
    )
    for label, values in results.items():
        print(
            f"  {label:<20} {statistics.median(values):6.2f} s "
            f"({min(values):.2f}-{max(values):.2f})"
        )
    sys.exit(0)


if __name__ == "__main__":
    main()
