"""The Ollama image's own scripts, run for real: the entrypoint under SIGTERM and the healthcheck
over HTTP.

No Ollama binary can be installed here (it is on neither PyPI nor Debian), so a fake `ollama`
executable on PATH stands in for it in the entrypoint tests: it serves, lists and pulls by
sleeping, and logs the signals it gets. The healthcheck is run against a real local HTTP server
answering Ollama's recorded /api/generate answer (tests/fixtures/ollama/README.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path

import yaml

from tests.servers import Answer, ScriptedServer, free_port, wait_until
from toolkit.paths import REPO_ROOT

IMAGE = REPO_ROOT / "images" / "ollama"
FIXTURES = Path(__file__).parent / "fixtures" / "ollama"
FAKE_OLLAMA = """#!/bin/bash
# Stands in for the Ollama binary, which cannot be had here: long steps loop until signalled.
log=$FAKE_OLLAMA_LOG
busy() {
  trap 'echo "$1 stopped" >>"$log"; exit 143' TERM
  echo "$1 started" >>"$log"
  while :; do sleep 0.1; done
}
case $1 in
  serve) busy serve ;;
  list) exit 0 ;;
  show) [ "${FAKE_OLLAMA_HAS_MODEL:-}" = 1 ] ;;
  pull) busy pull ;;
  cp) echo "cp done" >>"$log" ;;
  create) { echo "create $2 from $4:"; cat "$4"; } >>"$log" ;;
esac
"""


def _entrypoint(
    tmp_path: Path, has_model: bool, config_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ollama"
    fake.write_text(FAKE_OLLAMA)
    fake.chmod(0o755)
    log = tmp_path / "ollama.log"
    log.touch()
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_OLLAMA_LOG": str(log),
        "FAKE_OLLAMA_HAS_MODEL": "1" if has_model else "",
        "HOME": str(tmp_path),
        **(
            config_env
            or {
                "TOOLKIT_SERVED_NAME": "MiniCPM-V-2.6",
                "TOOLKIT_OLLAMA_SOURCE": "minicpm-v:8b-2.6-q4_K_M",
            }
        ),
    }
    process = subprocess.Popen(
        ["sh", str(IMAGE / "entrypoint.sh")],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so that a failed test can end the whole group
    )
    return process, log


def _stop_within_10s(process: subprocess.Popen[str]) -> None:
    """SIGTERM, as `docker stop` sends it; Docker's SIGKILL follows 10 s later."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever is left of the group
        process.wait()


def test_sigterm_during_the_pull_stops_the_pull_and_the_server(tmp_path: Path) -> None:
    process, log = _entrypoint(tmp_path, has_model=False)
    wait_until(lambda: "pull started" in log.read_text(), 10, "the pull")
    _stop_within_10s(process)
    assert process.returncode == 143
    lines = log.read_text().splitlines()
    assert {"pull stopped", "serve stopped"} <= set(lines), lines
    assert "cp done" not in lines


def test_sigterm_while_serving_waits_for_the_server_to_exit(tmp_path: Path) -> None:
    process, log = _entrypoint(tmp_path, has_model=True)
    assert process.stdout is not None
    assert process.stdout.readline() == "model MiniCPM-V-2.6 ready\n"
    # The fake's `list` answers at once, so "ready" can come before the fake server has set its
    # TERM trap; the real server handles TERM from its start.
    wait_until(lambda: "serve started" in log.read_text(), 10, "the server")
    _stop_within_10s(process)
    assert process.returncode == 143
    assert "serve stopped" in log.read_text().splitlines()


def test_minicpm_v2_5_is_created_from_its_gguf_and_projector_with_a_modelfile(
    tmp_path: Path,
) -> None:
    """The rendered service's environment makes the entrypoint write a Modelfile with one FROM
    line per file, model then projector, and `ollama create` the served name from it."""
    compose = yaml.safe_load((REPO_ROOT / "compose" / "minicpm-v2.5.yaml").read_text())
    service = compose["services"]["model"]
    env = {k: v for k, v in service["environment"].items() if k.startswith("TOOLKIT_")}
    assert env == {
        "TOOLKIT_OLLAMA_GGUF": "ggml-model-Q4_K_M.gguf",
        "TOOLKIT_OLLAMA_PROJECTOR": "mmproj-model-f16.gguf",
        "TOOLKIT_OLLAMA_SOURCE": "",
        "TOOLKIT_SERVED_NAME": "MiniCPM-Llama3-V2.5",
    }
    assert service["volumes"][-1] == (
        "${TOOLKIT_MODEL_DIR:-../models/MiniCPM-Llama3-V-2_5-gguf}:/models/local:ro"
    )
    process, log = _entrypoint(tmp_path, has_model=False, config_env=env)
    assert process.stdout is not None
    wait_until(lambda: "model MiniCPM-Llama3-V2.5 ready" in process.stdout.readline(), 10, "ready")
    _stop_within_10s(process)
    modelfile = tmp_path / "Modelfile"
    assert log.read_text().splitlines()[1:] == [
        f"create MiniCPM-Llama3-V2.5 from {modelfile}:",
        "FROM /models/local/ggml-model-Q4_K_M.gguf",
        "FROM /models/local/mmproj-model-f16.gguf",
        "serve stopped",
    ]


def _healthcheck(port: int, model: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(IMAGE / "healthcheck.sh"), str(port), model],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_healthy_means_a_one_token_generation_that_keeps_the_model_loaded() -> None:
    answers = {
        ("POST", "/api/generate", "stream=false"): Answer(
            body=(FIXTURES / "generate.json").read_bytes()
        )
    }
    with ScriptedServer(answers) as server:
        result = _healthcheck(int(server.url.rsplit(":", 1)[1]), "MiniCPM-V-2.6")
    assert (result.returncode, result.stderr) == (0, "")
    [(method, path, body)] = server.requests
    assert (method, path) == ("POST", "/api/generate")
    assert json.loads(body) == {
        "model": "MiniCPM-V-2.6",
        "prompt": "hi",
        "stream": False,
        "keep_alive": "1h",
        "options": {"num_predict": 1},
    }


def test_a_model_that_cannot_load_is_unhealthy_and_says_why() -> None:
    error = b'{"error":"model \\"MiniCPM-V-2.6\\" not found, try pulling it first"}'
    with ScriptedServer({}) as server:
        server.answers[("POST", "/api/generate")] = Answer(404, error)
        result = _healthcheck(int(server.url.rsplit(":", 1)[1]), "MiniCPM-V-2.6")
    assert result.returncode == 1
    assert result.stderr == (
        "MiniCPM-V-2.6 is not ready: HTTP/1.1 404 Not Found " + error.decode() + "\n"
    )


def test_no_server_is_unhealthy() -> None:
    result = _healthcheck(free_port(), "MiniCPM-V-2.6")
    assert result.returncode != 0
    assert "Connection refused" in result.stderr
