"""build, start, status, probe, stop against a real Docker engine, and the faults around them."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.engine.conftest import BASE_IMAGE, leftovers, toolkit, with_local_model
from tests.servers import free_port
from toolkit.host import engine as docker_engine
from toolkit.lifecycle import preflight
from toolkit.paths import REPO_ROOT
from toolkit.protocols import openai_image
from toolkit.protocols import probe as protocols
from toolkit.render import compose as render

PROJECT = "toolkit-demo-image"


def test_diffusers_demo_end_to_end(docker, built: Path, stopped_after) -> None:
    port = free_port()
    stopped_after.append(("demo-image", built))
    started = toolkit("start", "demo-image", "--port", str(port), catalog=built)
    assert started.exit_code == 0, started.output
    assert f"demo-image is ready at http://127.0.0.1:{port}" in started.stdout
    assert "waiting for Tiny-Diffusion" in started.stderr, "progress is shown while loading"

    detail = openai_image.generate(
        protocols.Client(f"http://127.0.0.1:{port}"), "Tiny-Diffusion", "64x48", "b64_json"
    )
    assert detail == "1 PNG(s) of 64x48 via b64_json"

    rows = json.loads(toolkit("status", "--json", catalog=built).stdout)
    row = next(r for r in rows if r["config"] == "demo-image")
    assert (row["state"], row["port"], row["model"]) == ("running", port, "Tiny-Diffusion")
    published = docker.containers.get(row["container"]).attrs["HostConfig"]["PortBindings"]
    assert published["8000/tcp"][0]["HostIp"] == "127.0.0.1", "bound to loopback only"

    stopped = toolkit("stop", "demo-image", catalog=built)
    assert stopped.stdout == "stopped demo-image\n"
    assert leftovers(docker, PROJECT) == []
    assert docker.volumes.get("toolkit-model-cache"), "the shared model cache survives stop"


def test_text_demo_probe_bench_and_seed_scripts(
    docker, built: Path, stopped_after, tmp_path: Path
) -> None:
    port = free_port()
    stopped_after.append(("demo-text", built))
    assert toolkit("start", "demo-text", "--port", str(port), catalog=built).exit_code == 0

    probe = toolkit("probe", "demo-text", "--json", catalog=built)
    assert probe.exit_code == 0, probe.output
    assert json.loads(probe.stdout)["verdict"] == "pass"

    out = tmp_path / "bench.json"
    bench = toolkit("bench", "demo-text", "--requests", "3", "--warmup", "0",
                    "--output-tokens", "4", "--json", str(out), catalog=built)  # fmt: skip
    assert bench.exit_code == 0, bench.output
    doc = json.loads(out.read_text())
    assert doc["levels"][0]["completed"] == 3, doc["levels"][0]["error_examples"]
    target = doc["target"]
    shown = json.loads(toolkit("show", "demo-text", "--json", catalog=built).stdout)
    assert (target["url"], target["config"], target["backend"], target["image"]) == (
        f"http://127.0.0.1:{port}",
        "demo-text",
        "transformers",
        shown["image"],
    )
    image = docker.images.get(target["image"])
    assert target["image_digest"] == (image.attrs["RepoDigests"] or [image.id])[0]

    env = {"PORT": str(port), "PATH": "/usr/bin:/bin"}
    request = subprocess.run(
        [REPO_ROOT / "scripts/request-service-openai-text.sh", "Tiny-Llama"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert request.returncode == 0, request.stderr
    assert json.loads(request.stdout)["object"] == "chat.completion"

    toolkit("stop", "demo-text", catalog=built)
    down = subprocess.run(
        [REPO_ROOT / "scripts/request-service-openai-text.sh", "Tiny-Llama"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert down.returncode != 0, "a request to a stopped service fails"


def test_start_refuses_a_taken_port(docker, built: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = toolkit("start", "demo-image", "--port", str(port), catalog=built)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: port {port} on 127.0.0.1 is already in use; pick another "
        "with --port or stop what holds it.\n"
    )
    assert leftovers(docker, PROJECT) == [], "nothing starts when the preflight fails"


def test_start_shows_the_log_tail_when_the_server_exits(
    docker, built: Path, tmp_path: Path, stopped_after
) -> None:
    (tmp_path / "empty-model").mkdir()
    broken = with_local_model(built, "demo-image", tmp_path / "empty-model", tmp_path / "catalog")
    stopped_after.append(("demo-image", broken))
    result = toolkit("start", "demo-image", "--port", str(free_port()), catalog=broken)
    assert result.exit_code == 1
    assert re.search(
        r"^error: demo-image's server (exited \(exit code 1\)|crashed \(Docker "
        r"restarted it \d time\(s\)\)) after \d+ s",
        result.stderr,
        re.MULTILINE,
    )
    assert "before the model answered; its last log lines:" in result.stderr
    assert "loading /models/local failed" in result.stderr, "the server's own error is shown"
    assert result.stderr.rstrip().endswith("The service was stopped.")
    assert leftovers(docker, PROJECT) == []


def test_start_times_out_when_the_model_loads_slower(docker, built: Path, stopped_after) -> None:
    stopped_after.append(("demo-image", built))
    result = toolkit(
        "start", "demo-image", "--port", str(free_port()), "--timeout", "0.5", catalog=built
    )
    assert result.exit_code == 1
    assert "error: demo-image did not list Tiny-Diffusion within 0 s; its last log lines:" in (
        result.stderr
    )
    assert "raise --timeout if the model needs longer to load." in result.stderr
    assert leftovers(docker, PROJECT) == []


def test_stop_of_a_service_not_running_says_so(docker, built: Path) -> None:
    result = toolkit("stop", "demo-image", catalog=built)
    assert (result.exit_code, result.stdout) == (0, "demo-image is not running; nothing to stop.\n")
    logs = toolkit("logs", "demo-image", catalog=built)
    assert (logs.exit_code, logs.stderr) == (
        1,
        "error: demo-image is not running; start it with 'toolkit start demo-image'.\n",
    )
    status = toolkit("status", "demo-image", catalog=built)
    assert (status.exit_code, status.stdout) == (0, "demo-image is not running.\n")


def test_unreachable_engine_is_one_sentence(docker) -> None:
    host = f"tcp://127.0.0.1:{free_port()}"
    result = toolkit("status", env={"DOCKER_HOST": host})
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: the Docker engine at {host} is not reachable; start "
        "dockerd (or fix DOCKER_HOST) and try again.\n"
    )


def test_start_refuses_a_missing_image(docker, built: Path, tmp_path: Path) -> None:
    (tmp_path / "never-built.yaml").write_text((built / "demo-image.yaml").read_text())
    result = toolkit("start", "never-built", catalog=tmp_path)
    assert result.exit_code == 1
    assert result.stderr == (
        "error: image toolkit/never-built:0.42.1 is not built; run "
        "'toolkit build never-built' first.\n"
    )


def test_start_refuses_gpu_configs_without_an_nvidia_runtime(docker) -> None:
    """This engine has no NVIDIA runtime: a GPU config is refused before anything starts."""
    result = toolkit("start", "llama3-8b")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: llama3-8b needs 1 GPU(s) but the Docker engine has neither the NVIDIA runtime "
        "nor NVIDIA CDI devices; install the NVIDIA Container Toolkit and restart dockerd.\n"
    )
    wrong = toolkit("start", "llama3-70b_4", "--gpus", "0,1")
    assert wrong.stderr == (
        "error: llama3-70b_4 needs 4 GPU(s) but --gpus names 2 (0,1); name exactly 4.\n"
    )


def test_gpus_held_by_a_running_service_are_refused(docker, engine_api, base_image: str) -> None:
    label = "io.github.model-serving-toolkit"
    holder = docker.containers.run(
        base_image,
        ["sleep", "60"],
        detach=True,
        # The labels compose gives a service (an image's own labels lack the port).
        labels={f"{label}.config": "qwen2-72b_4", f"{label}.gpus": "2,3", f"{label}.port": "1"},
    )
    try:
        preflight.check_gpus_free(engine_api, ["0", "1"])
        with pytest.raises(docker_engine.EngineError) as refused:
            preflight.check_gpus_free(engine_api, ["3", "4"])
        assert str(refused.value) == (
            "GPU(s) 3 are held by qwen2-72b_4; pick others with --gpus or stop that service first."
        )
    finally:
        holder.remove(force=True)


def test_start_is_idempotent_and_refuses_other_settings_or_a_missing_model_directory(
    docker, built: Path, tmp_path: Path, stopped_after
) -> None:
    stopped_after.append(("demo-image", built))
    port = free_port()
    assert toolkit("start", "demo-image", "--port", str(port), catalog=built).exit_code == 0
    same = toolkit("start", "demo-image", "--port", str(port), catalog=built)
    assert (same.exit_code, same.stdout.splitlines()[0]) == (
        0,
        f"demo-image is already running at http://127.0.0.1:{port} with the same settings.",
    )
    other = free_port()
    again = toolkit("start", "demo-image", "--port", str(other), catalog=built)
    assert (again.exit_code, again.stderr) == (
        1,
        f"error: demo-image is already running, but it runs with port {port}, not {other}; "
        "run 'toolkit stop demo-image' first to start it with other settings.\n",
    )
    toolkit("stop", "demo-image", catalog=built)

    elsewhere = with_local_model(built, "demo-image", tmp_path / "nowhere", tmp_path)
    missing = toolkit("start", "demo-image", catalog=elsewhere)
    assert missing.stderr == (
        f"error: demo-image serves the local model directory {tmp_path}/nowhere, which does not "
        "exist; create it (make demo does for the demo configs) or point source.local elsewhere.\n"
    )
    assert leftovers(docker, PROJECT) == []


def test_exposing_a_port_needs_an_api_key_the_server_checks(
    docker, built: Path, stopped_after
) -> None:
    no_key = toolkit("start", "demo-image", "--bind", "0.0.0.0", catalog=built)
    assert no_key.exit_code == 2, "bad input"
    assert no_key.stderr == (
        "error: publishing demo-image on 0.0.0.0 needs an API key; pass "
        "--api-key (or set TOOLKIT_API_KEY), or keep --bind 127.0.0.1.\n"
    )
    short = toolkit("start", "demo-text", "--bind", "0.0.0.0", "--api-key", "k", catalog=built)
    assert short.exit_code == 2
    assert short.stderr == (
        "error: the API key must be 8 to 256 characters of A-Z a-z 0-9 . _ ~ + / = -; "
        "pick another (e.g. openssl rand -hex 32).\n"
    )
    assert leftovers(docker, PROJECT) == []

    stopped_after.append(("demo-image", built))
    port = free_port()
    started = toolkit(
        "start",
        "demo-image",
        "--bind",
        "0.0.0.0",
        "--port",
        str(port),
        catalog=built,
        env={"TOOLKIT_API_KEY": "s3cret-key", "TOOLKIT_BASE_IMAGE": BASE_IMAGE},
    )
    assert started.exit_code == 0, started.output
    url = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{url}/v1/models").status_code == 401
    verdict = protocols.probe("openai-image", url, "Tiny-Diffusion", api_key="s3cret-key")
    assert verdict.passed, protocols.describe(verdict)
    assert "s3cret-key" not in started.output


def test_compose_exiting_0_without_a_container_is_caught(docker, built: Path, monkeypatch) -> None:
    """Docker Engine < 25 refuses healthcheck.start_interval, yet Compose exits 0 without
    creating the container. The rendered file no longer has the key, so the test adds it back to
    reproduce that real failure against the real engine and Compose."""
    major = int(docker.version()["Version"].split(".")[0])
    if major >= 25:
        pytest.skip(f"Docker Engine {major} accepts start_interval; the fault needs an older one")
    original = render.render_compose
    monkeypatch.setattr(
        render,
        "render_compose",
        lambda catalog, config, *rest: original(catalog, config, *rest).replace(
            "      start_period:", '      start_interval: "2s"\n      start_period:'
        ),
    )
    result = toolkit("start", "demo-image", "--port", str(free_port()), catalog=built)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: docker compose up did not start demo-image (")
    assert "start_interval" in result.stderr, "Compose's own reason is shown"
    assert result.stderr.endswith("); nothing was left running.\n")
    assert leftovers(docker, PROJECT) == []


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupting_start_stops_the_service_and_exits_130(
    docker, built: Path, tmp_path: Path, stopped_after
) -> None:
    """Ctrl-C while start waits tears down like a failure. The server here serves another
    name than the one start waits for, so the wait is still on when the interrupt comes."""
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    text = (built / "demo-image.yaml").read_text()
    (catalog / "demo-image.yaml").write_text(
        text.replace('  TOOLKIT_STEPS: "2"', '  TOOLKIT_STEPS: "2"\n  TOOLKIT_SERVED_NAME: other')
    )
    stopped_after.append(("demo-image", catalog))
    env = {**os.environ, "TOOLKIT_CATALOG": str(catalog)}
    start = subprocess.Popen(
        [sys.executable, "-m", "toolkit", "start", "demo-image", "--port", str(free_port())],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a run started in the background (`make test &`, nohup) ignores
        # SIGINT, and Python keeps an inherited SIG_IGN, so Ctrl-C would never arrive.
        preexec_fn=_default_sigint,
    )
    label = {"label": "io.github.model-serving-toolkit.config=demo-image"}
    deadline = time.monotonic() + 60
    while not docker.containers.list(filters=label) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert docker.containers.list(filters=label), "the container started"
    time.sleep(1)
    start.send_signal(signal.SIGINT)
    _, stderr = start.communicate(timeout=60)
    assert start.returncode == 130
    assert stderr.splitlines()[-1] == (
        "error: interrupted; demo-image was stopped, so nothing is left running."
    )
    assert leftovers(docker, PROJECT) == []


def test_stop_volumes_refuses_while_another_service_uses_the_cache(
    docker, built: Path, stopped_after
) -> None:
    stopped_after.append(("demo-text", built))
    assert toolkit("start", "demo-text", "--port", str(free_port()), catalog=built).exit_code == 0
    refused = toolkit("stop", "demo-image", "--volumes", catalog=built)
    assert (refused.exit_code, refused.stderr) == (
        1,
        "error: the model cache toolkit-model-cache is still used by demo-text; stop those "
        "first, then run this again (nothing was stopped).\n",
    )
    assert docker.containers.list(filters={"label": "io.github.model-serving-toolkit.config"})
