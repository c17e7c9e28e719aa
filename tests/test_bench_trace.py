"""Trace replay: a Mooncake-shaped JSONL sent at its timestamps against a scripted server, which
records what arrived and when; and the malformed traces refused before any request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Run
from tests.servers import ScriptedServer, free_port
from tests.test_bench import MODELS, SERVICE

TRACE = [
    {"timestamp": 1000, "input_length": 1100, "output_length": 7, "hash_ids": [4, 5, 6]},
    {"timestamp": 1400, "input_length": 700, "output_length": 3, "hash_ids": [4, 9]},
    {"timestamp": 1200, "input_length": 600, "output_length": 5, "hash_ids": [4, 5]},
    {"timestamp": 1600, "input_length": 40, "output_length": 2},
]


def _write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _replay(run: Run, tmp_path: Path, *args: str) -> tuple[ScriptedServer, dict[str, Any], str]:
    answers = {("GET", "/v1/models"): MODELS, ("POST", "/v1/chat/completions"): SERVICE}
    out = tmp_path / "r.json"
    trace = _write(tmp_path / "trace.jsonl", TRACE)
    with ScriptedServer(answers) as server:
        result = run(
            "bench", "--url", server.url, "--protocol", "openai-text", "--model", "m",
            "--warmup", "0", "--trace", str(trace), "--json", str(out), *args,
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    return server, json.loads(out.read_text()), result.stdout


def _blocks(body: dict[str, Any]) -> list[str]:
    """Each block of a prompt as `id:tokens`, its `block N:` counted as 4 tokens with the filler
    words after it (as the bench counts them)."""
    text = body["messages"][0]["content"]
    return [
        f"{part.split(':')[0]}:{part.count(' hello') + 4}" for part in text.split(" block ")[1:]
    ]


def test_a_trace_is_sent_at_its_timestamps_with_shared_prefixes(run: Run, tmp_path: Path) -> None:
    """At --trace-speed 2 the 600 ms of the trace take 300 ms: each request arrives no earlier
    than its scaled timestamp and well before the unscaled one; the prompts are built from the
    hash_ids' blocks, so requests with the same leading ids share that text exactly."""
    server, doc, stdout = _replay(run, tmp_path, "--trace-speed", "2")
    posts = [i for i, (method, _, _) in enumerate(server.requests) if method == "POST"]
    bodies = [json.loads(server.requests[i][2]) for i in posts]
    offsets = [server.arrived[i] - server.arrived[posts[0]] for i in posts]
    assert [b["max_tokens"] for b in bodies] == [7, 5, 3, 2]  # in timestamp order
    for offset, due in zip(offsets, [0.0, 0.1, 0.2, 0.3], strict=True):
        assert due - 0.01 <= offset < due + 0.15
    # full blocks of 512 tokens ("block N:" counts as 4 with its number), the last what is left
    assert [_blocks(b) for b in bodies[:3]] == [
        ["4:512", "5:512", "6:76"], ["4:512", "5:88"], ["4:512", "9:188"],
    ]  # fmt: skip
    first, second, third = (b["messages"][0]["content"] for b in bodies[:3])
    block = len(" block 4:" + " hello" * 508)
    assert first[:block] == third[:block] and first[block:] != third[block:]
    assert second == first[: len(second)]  # [4, 5] is a prefix of [4, 5, 6]: all of its text
    assert _blocks(bodies[3]) == ["-4:40"]  # no hash_ids: a block no other request has
    [level] = doc["levels"]
    assert level["load"] == {
        "kind": "trace", "rate": None, "concurrency": None, "poisson": False,
        "trace": str(tmp_path / "trace.jsonl"), "speed": 2.0,
    }  # fmt: skip
    assert level["completed"] == 4 and level["schedule_rate"] == 10.0
    assert level["schedule_lag_ms"] is not None and level["client_wait_ms"] is not None
    assert doc["config"]["trace_speed"] == 2.0
    assert "trace x2" in stdout.splitlines()[1]


def test_requests_keeps_the_first_of_the_trace(run: Run, tmp_path: Path) -> None:
    server, doc, _ = _replay(run, tmp_path, "--requests", "2")
    bodies = [json.loads(body) for method, _, body in server.requests if method == "POST"]
    assert [b["max_tokens"] for b in bodies] == [7, 5]
    assert doc["levels"][0]["requests"] == 2


HINT = (
    "give one JSON object a line with timestamp (ms), input_length, output_length and optional "
    "hash_ids, as in a Mooncake trace.\n"
)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            [TRACE[0], '{"timestamp": 5, "input_length": "many", "output_length": 2}'],
            "line 2 of the trace {path}: input_length must be a whole number of at least 1; ",
        ),
        (
            [TRACE[0], TRACE[1], '{"timestamp": -1, "input_length": 3, "output_length": 2}'],
            "line 3 of the trace {path}: timestamp must be a number of milliseconds of 0 or more; ",
        ),
        (
            ['{"timestamp": 0, "input_length": 3}'],
            "line 1 of the trace {path}: output_length must be a whole number of at least 1; ",
        ),
        (
            ['{"timestamp": 0, "input_length": 3, "output_length": 1, "hash_ids": [1, "a"]}'],
            "line 1 of the trace {path}: hash_ids must be a list of whole numbers; ",
        ),
        ([TRACE[0], "", "[1, 2]"], "line 3 of the trace {path} is not a JSON object; "),
        (["", " "], "the trace {path} holds no requests; "),
    ],
)
def test_a_malformed_trace_is_refused_naming_its_line(
    run: Run, tmp_path: Path, lines: list[Any], message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                            for line in lines))  # fmt: skip
    url = f"http://127.0.0.1:{free_port()}"
    result = run("bench", "--url", url, "--protocol", "openai-text", "--model", "m",
                 "--trace", str(path))  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr == "error: " + message.format(path=path) + HINT


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--trace-speed", "2"],
            "error: --trace-speed scales a trace; give --trace FILE.jsonl or drop it.\n",
        ),
        (
            ["--trace-speed", "1"],
            "error: --trace-speed scales a trace; give --trace FILE.jsonl or drop it.\n",
        ),
        (
            ["--trace", "t.jsonl", "--trace-speed", "0"],
            "error: --trace-speed must be above 0, e.g. --trace-speed 2 for twice as fast.\n",
        ),
        (
            ["--trace", "t.jsonl", "--rate", "3", "--poisson", "--turns", "2"],
            "error: --trace sends its own schedule and prompts; drop --rate, --poisson, --turns.\n",
        ),
        (
            ["--trace", "/nonexistent/t.jsonl"],
            "error: cannot read the trace /nonexistent/t.jsonl (No such file or directory); "
            + HINT,
        ),
    ],
)
def test_trace_flags_that_clash_are_refused(run: Run, args: list[str], message: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run("bench", "--url", url, "--protocol", "openai-text", "--model", "m", *args)
    assert result.exit_code == 2
    assert result.stderr == message
