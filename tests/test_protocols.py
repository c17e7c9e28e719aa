"""The protocol layer against real servers, and each failure class with its own verdict."""

from __future__ import annotations

import base64
import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from PIL import Image

from tests.conftest import Run
from tests.servers import Answer, ScriptedServer, diffusers_server, free_port, transformers_serve
from toolkit.paths import REPO_ROOT
from toolkit.protocols import ollama_text, openai_image, openai_text
from toolkit.protocols import probe as protocols
from toolkit.protocols.probe import Failure

FIXTURES = Path(__file__).parent / "fixtures" / "ollama"


@pytest.fixture(scope="module")
def text_server(tiny_models: Path) -> Iterator[str]:
    with transformers_serve(tiny_models) as url:
        yield url


@pytest.fixture(scope="module")
def image_server(tiny_models: Path) -> Iterator[str]:
    with diffusers_server(tiny_models / "tiny-diffusion") as url:
        yield url


def _failures(verdict: protocols.Verdict) -> dict[str, Failure | None]:
    return {c.name: c.failure for c in verdict.checks if not c.ok}


# --- openai-text: `transformers serve`, a real OpenAI-compatible server -----------------------


@pytest.mark.models
def test_openai_text_probe_passes_plain_and_streamed(text_server: str) -> None:
    verdict = protocols.probe("openai-text", text_server, "Tiny-Llama")
    assert [c.name for c in verdict.checks] == ["models", "chat", "chat-stream"]
    assert verdict.passed, protocols.describe(verdict)
    assert verdict.checks[2].detail.startswith("streamed ")


@pytest.mark.models
def test_openai_text_wrong_model_is_not_listed(text_server: str) -> None:
    verdict = protocols.probe("openai-text", text_server, "Llama3-70B")
    assert not verdict.passed
    assert _failures(verdict) == {"models": Failure.NOT_LISTED}
    assert "does not list 'Llama3-70B' (it lists: Tiny-Llama)" in verdict.checks[0].detail


@pytest.mark.models
def test_official_openai_client_accepts_the_same_answers(text_server: str) -> None:
    client = openai.OpenAI(base_url=f"{text_server}/v1", api_key="unused")
    assert "Tiny-Llama" in [m.id for m in client.models.list()]
    chat = client.chat.completions.create(
        model="Tiny-Llama", messages=[{"role": "user", "content": "Hello!"}], max_tokens=8
    )
    assert isinstance(chat.choices[0].message.content, str)
    stream = client.chat.completions.create(
        model="Tiny-Llama",
        messages=[{"role": "user", "content": "Hello!"}],
        max_tokens=8,
        stream=True,
    )
    assert any(chunk.choices and chunk.choices[0].finish_reason for chunk in stream)


# --- openai-image: the project's own diffusers server ------------------------------------------


@pytest.mark.models
def test_openai_image_probe_passes_b64_and_url(image_server: str) -> None:
    verdict = protocols.probe("openai-image", image_server, "Tiny-Diffusion", size="64x48")
    assert verdict.passed, protocols.describe(verdict)
    assert [c.detail for c in verdict.checks[1:]] == [
        "1 PNG(s) of 64x48 via b64_json",
        "1 PNG(s) of 64x48 via url",
    ]


@pytest.mark.models
def test_official_openai_client_accepts_image_answers(image_server: str) -> None:
    client = openai.OpenAI(base_url=f"{image_server}/v1", api_key="unused")
    result = client.images.generate(
        model="Tiny-Diffusion", prompt="a cat", size="64x64", n=2, response_format="b64_json"
    )
    images = [Image.open(io.BytesIO(base64.b64decode(d.b64_json or ""))) for d in result.data]
    assert [(i.format, i.size) for i in images] == [("PNG", (64, 64))] * 2


@pytest.mark.models
def test_image_server_refuses_a_bad_size_and_an_unknown_model(image_server: str) -> None:
    client = protocols.Client(image_server)
    with pytest.raises(protocols.ProbeError) as bad_size:
        openai_image.generate(client, "Tiny-Diffusion", "63x64", "b64_json")
    assert bad_size.value.kind == Failure.ERROR_STATUS
    assert "each side must be a multiple of 8" in str(bad_size.value)
    with pytest.raises(protocols.ProbeError) as unknown:
        openai_image.generate(client, "FLUX.1-dev", "64x64", "b64_json")
    assert "model 'FLUX.1-dev' does not exist" in str(unknown.value)


# --- ollama-text: recorded answers of real Ollama ----------------------------------------------


def _ollama(stream: bytes | None = None, cut: bool = False) -> ScriptedServer:
    """Recorded responses of real Ollama (see tests/fixtures/ollama/README.md), served for real."""
    lines = stream if stream is not None else (FIXTURES / "chat-stream.ndjson").read_bytes()
    return ScriptedServer(
        {
            ("GET", "/api/tags"): Answer(body=(FIXTURES / "tags.json").read_bytes()),
            ("POST", "/api/chat", "stream=false"): Answer(
                body=(FIXTURES / "chat.json").read_bytes()
            ),
            ("POST", "/api/chat"): Answer(
                content_type="application/x-ndjson",
                chunks=[line + b"\n" for line in lines.splitlines()],
                cut=cut,
            ),
        }
    )


def test_ollama_probe_passes_against_recorded_answers() -> None:
    """Recorded responses of real Ollama: the streamed chat ends with an empty done line."""
    with _ollama() as server:
        verdict = protocols.probe("ollama-text", server.url, "llama3")
    assert verdict.passed, protocols.describe(verdict)
    assert [c.detail for c in verdict.checks] == [
        "'llama3' is listed",  # Ollama lists it as llama3:latest
        "answered 'Hello! How are you today?'",
        "streamed 2 lines: 'The'",
    ]


def test_the_official_ollama_client_parses_what_the_probe_accepts() -> None:
    """Recorded responses of real Ollama, read by the `ollama` Python client: list, chat,
    streamed chat and the healthcheck's one-token generation."""
    import ollama

    answers = {
        ("POST", "/api/generate", "stream=false"): Answer(
            body=(FIXTURES / "generate.json").read_bytes()
        )
    }
    with _ollama() as server:
        server.answers.update(answers)
        client = ollama.Client(host=server.url)
        assert [m.model for m in client.list().models] == ["codellama:13b", "llama3:latest"]
        messages = [{"role": "user", "content": "Hello"}]
        answer = client.chat(model="llama3", messages=messages, stream=False)
        assert (answer.message.content, answer.done) == ("Hello! How are you today?", True)
        chunks = list(client.chat(model="llama3", messages=messages, stream=True))
        assert [c.message.content for c in chunks] == ["The", ""]
        assert [c.done for c in chunks] == [False, True]
        one = client.generate(
            model="MiniCPM-V-2.6", prompt="hi", keep_alive="1h", options={"num_predict": 1}
        )
        assert (one.response, one.done, one.done_reason, one.eval_count) == (
            "The",
            True,
            "length",
            1,
        )


def test_ollama_model_not_pulled_is_not_listed() -> None:
    """Recorded responses of real Ollama: a name absent from /api/tags."""
    with _ollama() as server:
        verdict = protocols.probe("ollama-text", server.url, "MiniCPM-V-2.6")
    assert _failures(verdict) == {"models": Failure.NOT_LISTED}


def test_ollama_truncated_stream_is_malformed() -> None:
    first_line = (FIXTURES / "chat-stream.ndjson").read_bytes().splitlines()[0]
    with _ollama(stream=first_line, cut=True) as server:
        client = protocols.Client(server.url)
        with pytest.raises(protocols.ProbeError) as caught:
            ollama_text.chat_stream(client, "llama3")
    assert caught.value.kind == Failure.MALFORMED


# --- failure classes ---------------------------------------------------------------------------


def test_stopped_server_is_unreachable() -> None:
    verdict = protocols.probe("openai-text", f"http://127.0.0.1:{free_port()}", "Tiny-Llama")
    assert _failures(verdict) == {"models": Failure.UNREACHABLE}
    assert "is not reachable (ConnectError)" in verdict.checks[0].detail


MODELS = json.dumps({"object": "list", "data": [{"id": "M", "object": "model"}]}).encode()


def test_server_answering_500_is_an_error_status() -> None:
    with ScriptedServer(
        {
            ("GET", "/v1/models"): Answer(body=MODELS),
            ("POST", "/v1/chat/completions"): Answer(500, b'{"error": "CUDA out of memory"}'),
        }
    ) as server:
        verdict = protocols.probe("openai-text", server.url, "M")
    assert _failures(verdict)["chat"] == Failure.ERROR_STATUS
    assert 'answered 500: {"error": "CUDA out of memory"}' in verdict.checks[1].detail


def test_truncated_sse_stream_is_malformed() -> None:
    chunk = {"object": "chat.completion.chunk", "choices": [{"delta": {"content": "Hi"}}]}
    event = b"data: " + json.dumps(chunk).encode() + b"\n\n"
    with (
        ScriptedServer(
            {
                ("POST", "/v1/chat/completions"): Answer(
                    content_type="text/event-stream", chunks=[event], cut=True
                ),
            }
        ) as server,
        pytest.raises(protocols.ProbeError) as caught,
    ):
        openai_text.chat_stream(protocols.Client(server.url), "M")
    assert caught.value.kind == Failure.MALFORMED


def test_image_of_the_wrong_size_is_malformed() -> None:
    png = io.BytesIO()
    Image.new("RGB", (32, 32)).save(png, format="PNG")
    body = json.dumps(
        {"created": 0, "data": [{"b64_json": base64.b64encode(png.getvalue()).decode()}]}
    ).encode()
    answers = {("POST", "/v1/images/generations"): Answer(body=body)}
    with ScriptedServer(answers) as server, pytest.raises(protocols.ProbeError) as caught:
        openai_image.generate(protocols.Client(server.url), "M", "64x64", "b64_json")
    assert caught.value.kind == Failure.MALFORMED
    assert str(caught.value) == "asked for 64x64, got a 32x32 image"


# --- the CLI -----------------------------------------------------------------------------------


@pytest.mark.models
def test_probe_cli_prints_one_json_object_and_exits_0(run: Run, text_server: str) -> None:
    result = run(
        "probe",
        "--url",
        text_server,
        "--protocol",
        "openai-text",
        "--model",
        "Tiny-Llama",
        "--json",
    )
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)
    assert verdict["verdict"] == "pass"
    assert {c["name"] for c in verdict["checks"]} == {"models", "chat", "chat-stream"}
    assert all(c["latency_ms"] > 0 for c in verdict["checks"])


def test_probe_cli_exits_1_on_failure_and_2_on_usage(run: Run) -> None:
    down = run(
        "probe",
        "--url",
        f"http://127.0.0.1:{free_port()}",
        "--protocol",
        "openai-text",
        "--model",
        "M",
    )
    assert down.exit_code == 1
    assert down.stdout.splitlines()[-1].startswith("FAIL: openai-text probe of 'M'")
    usage = run("probe", "--url", "http://127.0.0.1:1")
    assert usage.exit_code == 2
    assert usage.stderr == ("error: give a config NAME, or all of --url, --protocol and --model.\n")


# --- the seed's request scripts ----------------------------------------------------------------

SCRIPTS = REPO_ROOT / "scripts"


def _script(name: str, model: str, port: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPTS / f"request-service-{name}.sh", model],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PORT": port, **env},
    )


@pytest.mark.models
def test_image_script_saves_the_png_it_names(image_server: str, tmp_path: Path) -> None:
    out = tmp_path / "cat.png"
    result = _script(
        "openai-image", "Tiny-Diffusion", image_server.rsplit(":", 1)[1], SIZE="64x48", OUT=str(out)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"saved {out}\n"
    assert Image.open(out).size == (64, 48)


def test_ollama_script_sends_the_seed_chat_and_prints_the_stream() -> None:
    """Recorded responses of real Ollama: the seed's request has no stream key."""
    with _ollama() as server:
        result = _script("ollama-text", "llama3", server.url.rsplit(":", 1)[1])
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert lines[0]["message"]["content"] == "The" and lines[-1]["done"] is True


@pytest.mark.parametrize("name", ["openai-text", "ollama-text", "openai-image"])
def test_request_scripts_fail_when_the_service_is_down(name: str) -> None:
    result = _script(name, "M", str(free_port()))
    assert result.returncode != 0
    assert "Failed to connect" in result.stderr


@pytest.mark.parametrize("name", ["openai-text", "ollama-text", "openai-image"])
def test_request_scripts_explain_themselves(name: str) -> None:
    helped = subprocess.run(
        [SCRIPTS / f"request-service-{name}.sh", "-h"], capture_output=True, text=True, check=False
    )
    assert helped.returncode == 0 and helped.stdout.startswith("usage: ")
    bare = subprocess.run(
        [SCRIPTS / f"request-service-{name}.sh"], capture_output=True, text=True, check=False
    )
    assert bare.returncode == 2


@pytest.mark.models
def test_image_server_with_an_api_key_refuses_requests_without_it(tiny_models: Path) -> None:
    with diffusers_server(tiny_models / "tiny-diffusion", api_key="k3y") as url:
        refused = protocols.probe("openai-image", url, "Tiny-Diffusion")
        assert _failures(refused) == {"models": Failure.ERROR_STATUS}
        assert "answered 401" in refused.checks[0].detail
        assert protocols.probe("openai-image", url, "Tiny-Diffusion", api_key="k3y").passed
