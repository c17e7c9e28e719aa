"""The diffusers server's /health follows its pipeline worker, not only its HTTP thread.

In process, with the real tiny FLUX pipeline. To make the worker hang as a stuck kernel would,
the test replaces the loaded pipeline's scheduler `step` with one that blocks on an event before
calling the real step: the generation then stops inside the worker's denoising loop, the HTTP
thread still answers, and only the worker's missing heartbeat can tell.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import diffusers_server, wait_until

pytestmark = pytest.mark.models

STALL_SECONDS = 2.0


def test_health_turns_stalled_while_the_worker_hangs_and_recovers_after(tiny_models: Path) -> None:
    release = threading.Event()
    hung = threading.Event()

    def hanging(pipeline: Any) -> Any:
        real_step = pipeline.scheduler.step

        def step(*args: Any, **kwargs: Any) -> Any:
            hung.set()
            release.wait()
            return real_step(*args, **kwargs)

        pipeline.scheduler.step = step
        return pipeline

    with diffusers_server(
        tiny_models / "tiny-flux", stall_seconds=STALL_SECONDS, wrap=hanging
    ) as url:
        time.sleep(STALL_SECONDS + 1)
        idle = httpx.get(f"{url}/health")
        assert (idle.status_code, idle.json()) == (200, {"status": "ok"}), "idle is not stalled"

        answers: list[httpx.Response] = []
        request = threading.Thread(
            target=lambda: answers.append(
                httpx.post(
                    f"{url}/v1/images/generations",
                    json={"prompt": "a cat", "size": "32x32"},
                    timeout=120,
                )
            )
        )
        request.start()
        assert hung.wait(60), "the generation reached the scheduler"
        busy = httpx.get(f"{url}/health")
        assert busy.status_code == 200, "a step that just began is not a stall"
        wait_until(
            lambda: httpx.get(f"{url}/health").status_code == 503, 10, "/health to report stalled"
        )
        stalled = httpx.get(f"{url}/health").json()
        assert stalled["status"] == "stalled"
        assert stalled["error"].startswith("the worker has not progressed for ")

        release.set()
        request.join(120)
        assert answers and answers[0].status_code == 200, answers
        assert answers[0].json()["data"][0]["b64_json"]
        recovered = httpx.get(f"{url}/health")
        assert (recovered.status_code, recovered.json()) == (200, {"status": "ok"})
