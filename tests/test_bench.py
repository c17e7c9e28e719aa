"""`toolkit bench` against scripted servers: the stream shapes and faults real servers will not
produce on demand, each proved through the whole command and its JSON result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Run
from tests.servers import Answer, ScriptedServer, free_port

MODELS = Answer(body=json.dumps({"object": "list", "data": [{"id": "m"}]}).encode())
PAUSE = 0.3


def sse(*events: dict[str, Any] | str) -> list[bytes]:
    return [
        b"data: " + (e.encode() if isinstance(e, str) else json.dumps(e).encode()) + b"\n\n"
        for e in events
    ]


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def usage(completion: int, prompt: int = 5) -> dict[str, Any]:
    return {
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
    }


ROLE = chunk({"role": "assistant", "content": ""})


def bench(run: Run, tmp_path: Path, answer: Answer, *args: str) -> dict[str, Any]:
    """Run the command against one scripted chat answer; return its single level."""
    answers = {("GET", "/v1/models"): MODELS, ("POST", "/v1/chat/completions"): answer}
    out = tmp_path / "result.json"
    with ScriptedServer(answers) as server:
        result = run(
            "bench", "--url", server.url, "--protocol", "openai-text", "--model", "m",
            "--requests", "3", "--warmup", "0", "--json", str(out), *args,
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["schema"] == "toolkit-bench/3"
    [level] = doc["levels"]
    return dict(level)


def test_ttft_waits_for_content_not_the_role_only_first_chunk(run: Run, tmp_path: Path) -> None:
    events = sse(
        ROLE, chunk({"content": "Hi"}), chunk({"content": "!"}, "stop"), usage(2), "[DONE]"
    )
    level = bench(
        run, tmp_path, Answer(chunks=events, content_type="text/event-stream", pause=PAUSE)
    )
    assert level["completed"] == 3
    # The role chunk came at once; the first content one PAUSE later: that is the TTFT.
    assert level["ttft_ms"]["p50"] >= PAUSE * 1000
    # One gap between the two content chunks, not the role chunk's, per request.
    assert len(level["distributions"]["itl_ms"]) == 3
    assert level["itl_ms"]["p50"] >= PAUSE * 1000
    assert level["output_tokens"] == 6


def test_a_reasoning_stream_reports_both_ttfts(run: Run, tmp_path: Path) -> None:
    """Reasoning one pause after the role chunk, more of it, then the answer: TTFT to any token
    and TTFT to the first content, in the JSON and as two columns of the table."""
    events = sse(
        ROLE,
        chunk({"reasoning_content": "Hmm"}),
        chunk({"reasoning_content": ", well"}),
        chunk({"content": "Hi"}, "stop"),
        usage(3),
    )
    answer = Answer(chunks=events, content_type="text/event-stream", pause=PAUSE)
    answers = {("GET", "/v1/models"): MODELS, ("POST", "/v1/chat/completions"): answer}
    out = tmp_path / "result.json"
    with ScriptedServer(answers) as server:
        result = run(
            "bench", "--url", server.url, "--protocol", "openai-text", "--model", "m",
            "--requests", "2", "--warmup", "0", "--json", str(out),
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    [level] = json.loads(out.read_text())["levels"]
    assert PAUSE * 1000 <= level["ttft_ms"]["p50"] < 2 * PAUSE * 1000
    assert 3 * PAUSE * 1000 <= level["ttft_content_ms"]["p50"] < 4 * PAUSE * 1000
    assert level["errors"] == {}
    header, row = result.stdout.splitlines()[:2]
    for name, low in (("TTFT_ANY", 1), ("TTFT_CONTENT", 3)):
        p50 = float(row[header.index(f"{name} P50/P99 MS") :].split()[0].split("/")[0])
        assert low * PAUSE * 1000 <= p50 < (low + 1) * PAUSE * 1000


def test_without_reasoning_the_table_has_one_ttft(run: Run, tmp_path: Path) -> None:
    answers = {("GET", "/v1/models"): MODELS, ("POST", "/v1/chat/completions"): SERVICE}
    with ScriptedServer(answers) as server:
        result = run(
            "bench", "--url", server.url, "--protocol", "openai-text", "--model", "m",
            "--requests", "1", "--warmup", "0",
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0]
    assert " TTFT P50/P99 MS " in header and "TTFT_CONTENT" not in header


def test_usage_only_in_the_last_chunk_counts_the_tokens(run: Run, tmp_path: Path) -> None:
    words = [chunk({"content": f" w{i}"}) for i in range(5)]
    events = sse(ROLE, *words, chunk({}, "length"), usage(7, prompt=11), "[DONE]")
    level = bench(run, tmp_path, Answer(chunks=events, content_type="text/event-stream"))
    assert (level["output_tokens"], level["prompt_tokens"]) == (21, 33)
    assert level["usage_missing"] == 0


def test_an_error_in_the_middle_of_a_stream_is_a_failure(run: Run, tmp_path: Path) -> None:
    error = {"error": {"message": "engine died", "type": "InternalServerError", "code": 500}}
    events = sse(ROLE, chunk({"content": "Hi"}), error, "[DONE]")
    level = bench(run, tmp_path, Answer(chunks=events, content_type="text/event-stream"))
    assert (level["completed"], level["failed"]) == (0, 3)
    assert level["errors"] == {"stream-error": 3}
    assert "engine died" in level["error_examples"]["stream-error"]


def test_a_dropped_connection_is_a_failure(run: Run, tmp_path: Path) -> None:
    events = sse(ROLE, chunk({"content": "Hi"}))
    level = bench(run, tmp_path, Answer(chunks=events, content_type="text/event-stream", cut=True))
    assert level["errors"] == {"connection": 3}
    assert level["ttft_ms"] is None


def test_http_429_is_counted_by_status(run: Run, tmp_path: Path) -> None:
    level = bench(run, tmp_path, Answer(429, b'{"error": "rate limited"}'), "--slo", "ttft=1s")
    assert level["errors"] == {"http-429": 3}
    assert level["goodput"] == {"requests_per_s": 0.0, "fraction": 0.0}


def test_goodput_counts_only_requests_within_the_slo(run: Run, tmp_path: Path) -> None:
    events = sse(ROLE, chunk({"content": "Hi"}), chunk({"content": "!"}, "stop"), usage(2))
    answer = Answer(chunks=events, content_type="text/event-stream", pause=PAUSE)
    slow = bench(run, tmp_path, answer, "--slo", "ttft=100ms")
    fast = bench(run, tmp_path, answer, "--slo", "ttft=5s,tpot=5s")
    assert slow["goodput"]["fraction"] == 0.0
    assert fast["goodput"]["fraction"] == 1.0


def test_open_loop_latency_counts_from_the_schedule(run: Run, tmp_path: Path) -> None:
    """A rate faster than the server answers: later requests wait, and that wait is latency."""
    events = sse(ROLE, chunk({"content": "Hi"}, "stop"), usage(1))
    answer = Answer(chunks=events, content_type="text/event-stream", pause=PAUSE)
    level = bench(run, tmp_path, answer, "--rate", "20", "--requests", "6")
    assert level["target_rate"] == 20
    assert level["load"] == {
        "kind": "rate", "rate": 20.0, "concurrency": None, "poisson": False, "trace": None,
        "speed": None,
    }  # fmt: skip
    assert level["schedule_lag_ms"]["max"] < 250  # the client kept to the schedule
    assert level["e2e_ms"]["p50"] >= 2 * PAUSE * 1000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "0"], "error: --rate must be above 0 requests per second, e.g. --rate 5.\n"),
        (
            ["--slo", "latency=1s"],
            "error: unknown SLO key 'latency' in --slo; use ttft, itl, tpot or e2e, "
            "e.g. --slo ttft=500ms,tpot=50ms.\n",
        ),
        (
            ["--slo", "ttft=fast"],
            "error: --slo ttft=fast is not a positive time; write it like ttft=500ms or ttft=2s.\n",
        ),
        (
            ["--dataset", "/nonexistent/chats.jsonl"],
            "error: cannot read the dataset /nonexistent/chats.jsonl (No such file or directory); "
            'give a ShareGPT JSON list of {"conversations": [{"from": "human", "value": ...}, '
            '...]} objects, or a JSONL file with one {"messages": [...]} object a line.\n',
        ),
        (["--rate", "5", "--concurrency", "2"], "error: give --rate or --concurrency, not both.\n"),
        (
            ["--prompt-tokens", "-1"],
            "error: --prompt-tokens must be at least 1, e.g. --prompt-tokens 128.\n",
        ),
        (
            ["--output-tokens", "0"],
            "error: --output-tokens must be at least 1, e.g. --output-tokens 128.\n",
        ),
        (
            ["--sweep-steps", "0"],
            "error: --sweep-steps must be at least 1, e.g. --sweep-steps 4.\n",
        ),
        (["--warmup", "-1"], "error: --warmup must be 0 or more requests, e.g. --warmup 2.\n"),
        (["--timeout", "0"], "error: --timeout must be above 0 seconds, e.g. --timeout 600.\n"),
    ],
)
def test_bad_input_is_refused_before_any_request(run: Run, args: list[str], message: str) -> None:
    """Nothing listens on the port: had a request gone out, the message would say so instead."""
    url = f"http://127.0.0.1:{free_port()}"
    result = run("bench", "--url", url, "--protocol", "openai-text", "--model", "m", *args)
    assert result.exit_code == 2
    assert result.stderr == message


def test_a_dataset_line_that_is_not_a_chat_is_refused(run: Run, tmp_path: Path) -> None:
    dataset = tmp_path / "chats.jsonl"
    dataset.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n{"prompt": "x"}\n')
    url = f"http://127.0.0.1:{free_port()}"
    result = run(
        "bench", "--url", url, "--protocol", "openai-text", "--model", "m",
        "--dataset", str(dataset),
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: line 2 of the dataset {dataset} is not a chat conversation; "
        'give a ShareGPT JSON list of {"conversations": [{"from": "human", "value": ...}, '
        '...]} objects, or a JSONL file with one {"messages": [...]} object a line.\n'
    )


def test_a_model_the_server_does_not_list_is_refused(run: Run) -> None:
    """The model name is the user's input: exit 2, saying what the server does list."""
    with ScriptedServer({("GET", "/v1/models"): MODELS}) as server:
        result = run("bench", "--url", server.url, "--protocol", "openai-text", "--model", "x")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {server.url}/v1/models does not list 'x' (it lists: m); "
        "give --model a name it lists.\n"
    )


def test_an_endpoint_that_is_not_reachable_is_a_failed_step(run: Run) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run("bench", "--url", url, "--protocol", "openai-text", "--model", "m")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {url} is not reachable (ConnectError); check the URL and that the server runs.\n"
    )


def test_ollama_counts_come_from_eval_count(run: Run, tmp_path: Path) -> None:
    """Ollama's recorded stream (tests/fixtures/ollama), its final line carrying eval_count."""
    fixtures = Path(__file__).parent / "fixtures" / "ollama"
    tags = json.loads((fixtures / "tags.json").read_text())
    tags["models"][0]["name"] = "m"
    lines = (fixtures / "chat-stream.ndjson").read_bytes().splitlines(keepends=True)
    answers = {
        ("GET", "/api/tags"): Answer(body=json.dumps(tags).encode()),
        ("POST", "/api/chat"): Answer(chunks=lines, content_type="application/x-ndjson"),
    }
    out = tmp_path / "ollama.json"
    with ScriptedServer(answers) as server:
        result = run(
            "bench", "--url", server.url, "--protocol", "ollama-text", "--model", "m",
            "--requests", "2", "--warmup", "0", "--json", str(out),
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    [level] = json.loads(out.read_text())["levels"]
    assert level["output_tokens"] == 2 * 282
    assert level["prompt_tokens"] == 2 * 26
    assert level["server_tpot_ms"]["p50"] == pytest.approx(4535.599 / 282, abs=0.01)


FAST = sse(ROLE, chunk({"content": "Hi"}, "stop"), usage(1), "[DONE]")


def test_a_poisson_run_on_schedule_does_not_warn(run: Run, tmp_path: Path) -> None:
    """Seed 0's Poisson schedule holds 132 arrivals in 3 s at 50/s (43.9/s between the first and
    the last): fewer than 50/s asks for, by chance, yet every one sent on time."""
    answer = Answer(chunks=FAST, content_type="text/event-stream")
    level = bench(
        run, tmp_path, answer, "--rate", "50", "--poisson", "--duration", "3",
        "--requests", "100000",
    )  # fmt: skip
    assert level["requests"] == 132
    assert level["schedule_rate"] == pytest.approx(43.871, abs=0.01)
    assert level["requests_per_s"] < 0.95 * 50  # what the old warning judged by
    assert level["send_rate"] >= 0.95 * level["schedule_rate"]
    assert level["warnings"] == []


def test_a_short_level_with_slow_answers_does_not_warn(run: Run, tmp_path: Path) -> None:
    """16 requests at 5.51/s whose answers take 0.3 s: the answers end after the schedule, so
    completed / (first send to last answer) is below the rate, yet every send was on time."""
    events = sse(ROLE, chunk({"content": "Hi"}), chunk({"content": "!"}, "stop"), usage(2))
    answer = Answer(chunks=events, content_type="text/event-stream", pause=PAUSE)
    level = bench(run, tmp_path, answer, "--rate", "5.51", "--requests", "16")
    assert level["requests_per_s"] < 0.99 * 5.51  # what the old warning judged by
    assert level["send_rate"] == pytest.approx(5.51, rel=0.05)
    assert level["warnings"] == []


def test_a_client_that_cannot_keep_up_warns(run: Run, tmp_path: Path) -> None:
    """300 sends in 3 ms: no Python client sends that fast, so the sends fall behind."""
    answer = Answer(chunks=FAST, content_type="text/event-stream")
    level = bench(run, tmp_path, answer, "--rate", "100000", "--requests", "300")
    assert level["send_rate"] < 0.95 * level["schedule_rate"]
    [warning] = level["warnings"]
    assert warning == (
        f"sent {level['send_rate']:g} req/s of the {level['schedule_rate']:g} scheduled: the "
        "client fell behind the schedule (latencies count from the schedule, so they include "
        "the delay)."
    )


# A fixed service time of 0.3 s: three chunks 0.15 s apart.
SERVICE = Answer(
    chunks=sse(ROLE, chunk({"content": "Hi"}, "stop"), usage(1)),
    content_type="text/event-stream",
    pause=PAUSE / 2,
)


def test_closed_loop_client_wait_is_near_zero_within_the_connections(
    run: Run, tmp_path: Path
) -> None:
    level = bench(run, tmp_path, SERVICE, "--concurrency", "2", "--requests", "6")
    assert level["client_wait_ms"]["p99"] < 50
    assert level["e2e_ms"]["p50"] >= PAUSE * 1000


def test_closed_loop_client_wait_grows_past_the_connections(run: Run, tmp_path: Path) -> None:
    """4 requests in flight over 2 connections: two always wait in the client. aiohttp's pool
    is not first come, first served (a worker whose answer ended takes its freed connection
    again before an older waiter wakes), so two requests wait out the whole run rather than
    each waiting one service time: the figure shows that too."""
    level = bench(
        run, tmp_path, SERVICE, "--concurrency", "4", "--connections", "2", "--requests", "8"
    )
    wait = level["client_wait_ms"]
    assert wait["max"] >= 2 * PAUSE * 1000  # waited through several 0.3 s answers
    assert wait["mean"] >= 0.5 * PAUSE * 1000
    # the wait is inside the latency: from due to answered
    assert level["e2e_ms"]["max"] >= wait["max"] + 0.9 * PAUSE * 1000


def test_open_loop_client_wait_under_and_past_capacity(run: Run, tmp_path: Path) -> None:
    """Two connections and 0.3 s answers hold 6.7 requests/s: at 4/s nothing waits, at 20/s
    the sends queue in the client, the wait grows request by request, and the level warns."""
    under = bench(run, tmp_path, SERVICE, "--rate", "4", "--connections", "2", "--requests", "8")
    assert under["client_wait_ms"]["p99"] < 50
    assert under["warnings"] == []
    past = bench(run, tmp_path, SERVICE, "--rate", "20", "--connections", "2", "--requests", "10")
    # the 10th request is due at 0.45 s and sent at 1.2 s, after four rounds of two
    assert past["client_wait_ms"]["max"] >= 0.6 * 1000
    assert past["schedule_lag_ms"]["p99"] < 50  # the scheduler kept time; the connections did not
    assert past["send_rate"] < 0.95 * past["schedule_rate"]
    assert past["warnings"][0].startswith(f"sent {past['send_rate']:g} req/s of the ")


def test_the_table_shows_the_client_wait(run: Run, tmp_path: Path) -> None:
    answers = {("GET", "/v1/models"): MODELS, ("POST", "/v1/chat/completions"): SERVICE}
    with ScriptedServer(answers) as server:
        result = run(
            "bench", "--url", server.url, "--protocol", "openai-text", "--model", "m",
            "--requests", "4", "--warmup", "0", "--concurrency", "2", "--connections", "1",
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()[:2]
    column = header.index("CLIENT_WAIT P50/P99 MS")
    wait = row[column:].split()[0]
    assert float(wait.split("/")[1]) >= 0.8 * PAUSE * 1000  # the second request waited


def test_connections_below_one_are_refused(run: Run) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run(
        "bench", "--url", url, "--protocol", "openai-text", "--model", "m", "--connections", "0"
    )
    assert result.exit_code == 2
    assert result.stderr == "error: --connections must be at least 1, e.g. --connections 8.\n"
