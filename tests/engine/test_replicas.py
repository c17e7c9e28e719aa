"""Two replicas of the real CPU vLLM (demo-vllm) behind the real router (vllm-router).

Both replicas answer through the one endpoint; a replica killed mid-run is routed around and
comes back; status lists each replica; the keyed proxy fronts the router; stop leaves nothing.
Each replica's own vLLM counts the requests it served (`vllm:request_success_total`), read at
its container address, so the test sees where the router sent them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engine.conftest import BASE_IMAGE, leftovers, toolkit
from tests.engine.conftest import VLLM as NAME
from tests.servers import free_port

PROJECT = "toolkit-demo-vllm"
MODEL = "Tiny-Llama"
BUILD_ENV = {"TOOLKIT_BASE_IMAGE": BASE_IMAGE}


@pytest.fixture
def stopped_after(docker: object, vllm_built: Path) -> Iterator[None]:
    yield
    stopped = toolkit("stop", NAME, catalog=vllm_built)
    assert stopped.exit_code == 0, stopped.output
    assert leftovers(docker, PROJECT) == []


def _replica(docker: Any, number: int) -> Any:
    (found,) = docker.containers.list(
        all=True,
        filters={
            "label": [
                f"com.docker.compose.project={PROJECT}",
                f"io.github.model-serving-toolkit.replica={number}/2",
            ]
        },
    )
    return found


def _served(docker: Any, number: int) -> float:
    """Requests replica `number` answered, by its own vLLM's counter (0 while it is down)."""
    found = _replica(docker, number)
    found.reload()
    address = next(iter(found.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    try:
        text = httpx.get(f"http://{address}:8000/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0.0
    counts = re.findall(r"^vllm:request_success_total\{[^}]*\} ([0-9.e+]+)$", text, re.M)
    return sum(float(c) for c in counts)


def _ask(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 2}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=60)


def test_two_replicas_answer_through_the_router_and_one_killed_comes_back(
    docker: Any, vllm_built: Path, stopped_after: None
) -> None:
    host_port = free_port()
    result = toolkit(
        "start", NAME, "--replicas", "2", "--policy", "round_robin", "--port", str(host_port),
        catalog=vllm_built, env=BUILD_ENV,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    url = f"http://127.0.0.1:{host_port}"
    assert f"{NAME} is ready at {url} after " in result.stdout
    assert f"{MODEL} answers from 2 replicas behind the router." in result.stdout

    rows = json.loads(toolkit("status", NAME, "--json", catalog=vllm_built).stdout)
    assert [(r["config"], r["replica"], r["url"]) for r in rows] == [
        (NAME, "1/2", url),
        (NAME, "2/2", url),
    ]
    assert all(r["running"] == 0.0 for r in rows), "status reads each replica's own /metrics"
    second = toolkit("logs", NAME, "--replica", "2", "--tail", "5", catalog=vllm_built)
    assert second.exit_code == 0 and second.stdout.strip(), second.output
    third = toolkit("logs", NAME, "--replica", "3", catalog=vllm_built)
    assert (third.exit_code, third.stderr) == (
        2,
        f"error: {NAME} runs 2 replica(s), so there is no replica 3; pick one of 1 to 2.\n",
    )

    before = [_served(docker, 1), _served(docker, 2)]
    for _ in range(6):
        assert _ask(url).status_code == 200
    after = [_served(docker, 1), _served(docker, 2)]
    assert [a - b for a, b in zip(after, before, strict=True)] == [3.0, 3.0], "round robin"

    # The kernel kills the server, as the OOM killer would (`docker kill` counts as a stop,
    # which Docker's restart policy leaves stopped).
    os.kill(_replica(docker, 2).attrs["State"]["Pid"], signal.SIGKILL)
    answered = [_ask(url).status_code for _ in range(6)]
    assert answered == [200] * 6, "the router routes around the killed replica"

    deadline = time.monotonic() + 300  # Docker restarts it; vLLM loads again (60-100 s)
    served = _served(docker, 2)
    while _served(docker, 2) <= served:
        assert time.monotonic() < deadline, "the killed replica did not come back"
        assert _ask(url).status_code == 200
        time.sleep(2)
    assert _replica(docker, 2).attrs["RestartCount"] >= 1

    again = toolkit("start", NAME, "--replicas", "2", "--port", str(host_port), catalog=vllm_built)
    assert again.exit_code == 0, again.output
    assert "is already running" in again.stdout
    other = toolkit("start", NAME, "--port", str(host_port), catalog=vllm_built)
    assert (other.exit_code, other.stderr) == (
        1,
        f"error: {NAME} is already running, but it runs 2 replica(s), not 1; run 'toolkit stop "
        f"{NAME}' first to start it with other settings.\n",
    )


def test_the_keyed_proxy_fronts_the_router(
    docker: Any, vllm_built: Path, stopped_after: None
) -> None:
    host_port = free_port()
    result = toolkit(
        "start", NAME, "--replicas", "2", "--port", str(host_port), "--api-key", "s3cret-key",
        catalog=vllm_built, env=BUILD_ENV,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    url = f"http://127.0.0.1:{host_port}"
    assert _ask(url).status_code == 401
    assert _ask(url, {"Authorization": "Bearer s3cret-key"}).status_code == 200
    closed = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer s3cret-key"})
    assert closed.status_code == 404, "the router's own paths stay inside"
