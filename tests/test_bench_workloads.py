"""The bench's workloads beyond one random prompt: shared prefixes (the prompts it builds, as a
scripted server received them) and vLLM's prefix-cache counters read beside them."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest

from tests.conftest import Run
from tests.servers import ScriptedServer, free_port
from tests.test_bench import MODELS, SERVICE
from toolkit.bench import metrics
from toolkit.bench.load import shared_prefix_messages


def test_shared_prefix_prompts_take_turns_and_repeat() -> None:
    built = [shared_prefix_messages((2, 3), 50, 10, i) for i in range(7)]
    systems = [m[0]["content"] for m in built]
    questions = [m[1]["content"].split(":")[0] for m in built]
    assert [s.split(":")[0] for s in systems] == ["prompt 0", "prompt 1"] * 3 + ["prompt 0"]
    assert questions == ["question 0"] * 2 + ["question 1"] * 2 + ["question 2"] * 2 + [
        "question 0"
    ]
    assert systems[0] == systems[2] == systems[4] != systems[1]
    assert built[6] == built[0]  # after N x M requests the load starts over
    assert [m["role"] for m in built[0]] == ["system", "user"]
    assert len(systems[0].split()) == 2 + 46  # "prompt 0:" and the filler words


def test_the_shared_prefix_load_is_what_the_server_receives(run: Run, tmp_path: Path) -> None:
    answers = {("GET", "/v1/models"): MODELS, ("POST", "/v1/chat/completions"): SERVICE}
    out = tmp_path / "r.json"
    with ScriptedServer(answers) as server:
        result = run(
            "bench", "--url", server.url, "--protocol", "openai-text", "--model", "m",
            "--requests", "6", "--warmup", "0", "--concurrency", "1", "--json", str(out),
            "--shared-prefix", "3:2", "--prefix-tokens", "200", "--prompt-tokens", "20",
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    sent = [json.loads(body) for method, path, body in server.requests if method == "POST"]
    heads = [(b["messages"][0]["content"][:8], b["messages"][1]["content"][:10]) for b in sent]
    assert heads == [
        ("prompt 0", "question 0"), ("prompt 1", "question 0"), ("prompt 2", "question 0"),
        ("prompt 0", "question 1"), ("prompt 1", "question 1"), ("prompt 2", "question 1"),
    ]  # fmt: skip
    config = json.loads(out.read_text())["config"]
    assert (config["shared_prefix"], config["prefix_tokens"]) == ([3, 2], 200)


METRICS = """# TYPE vllm:prefix_cache_queries counter
vllm:prefix_cache_queries_total{{engine="0",model_name="m"}} {queries}
vllm:prefix_cache_hits_total{{engine="0",model_name="m"}} {hits}
vllm:generation_tokens_total{{engine="0",model_name="m"}} 10.0
"""


def test_the_prefix_cache_hit_rate_is_the_difference_over_the_level() -> None:
    before = metrics.parse(METRICS.format(queries=1000.0, hits=100.0), "m")
    after = metrics.parse(METRICS.format(queries=5000.0, hits=3100.0), "m")
    server = metrics.difference(before, after)
    assert server is not None
    assert (server["prefix_cache_queries"], server["prefix_cache_hits"]) == (4000, 3000)
    assert server["prefix_cache_hit_rate"] == 0.75


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--shared-prefix", "4"],
            "error: --shared-prefix 4 is not PROMPTS:QUESTIONS; give two whole numbers of at "
            "least 1, e.g. --shared-prefix 4:16.\n",
        ),
        (
            ["--shared-prefix", "0:3"],
            "error: --shared-prefix 0:3 is not PROMPTS:QUESTIONS; give two whole numbers of at "
            "least 1, e.g. --shared-prefix 4:16.\n",
        ),
        (
            ["--shared-prefix", "2:3", "--prefix-tokens", "0"],
            "error: --prefix-tokens must be at least 1, e.g. --prefix-tokens 1024.\n",
        ),
        (
            ["--shared-prefix", "2:3", "--dataset", "x.jsonl"],
            "error: --shared-prefix makes its own prompts; drop --dataset.\n",
        ),
    ],
)
def test_bad_shared_prefixes_are_refused(run: Run, args: list[str], message: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run("bench", "--url", url, "--protocol", "openai-text", "--model", "m", *args)
    assert result.exit_code == 2
    assert result.stderr == message


def test_a_conversation_sends_its_growing_history_each_turn(run: Run, tmp_path: Path) -> None:
    """Two slots, three turns each, 0.2 s of thinking: every turn carries the questions and
    answers before it, so the prompt sent grows turn by turn, and a new conversation follows."""
    answers = {("GET", "/v1/models"): MODELS, ("POST", "/v1/chat/completions"): SERVICE}
    out = tmp_path / "r.json"
    with ScriptedServer(answers) as server:
        result = run(
            "bench", "--url", server.url, "--protocol", "openai-text", "--model", "m",
            "--requests", "8", "--warmup", "0", "--concurrency", "2", "--json", str(out),
            "--turns", "3", "--think-time", "0.2", "--prompt-tokens", "10",
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    sent = [json.loads(body)["messages"] for method, _, body in server.requests if method == "POST"]
    assert sorted(len(m) for m in sent) == [1, 1, 1, 1, 3, 3, 5, 5]
    for messages in sent:
        assert [m["role"] for m in messages] == ["user", "assistant"] * (len(messages) // 2) + [
            "user"
        ]
        assert all(m["content"] == "Hi" for m in messages[1::2])  # the answers streamed back
    by_first: dict[str, list[list[dict[str, str]]]] = {}
    for messages in sent:
        by_first.setdefault(messages[0]["content"], []).append(messages)
    for turns in by_first.values():  # each conversation's prompts, in the order sent
        sizes = [len(json.dumps(m)) for m in turns]
        assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
        assert all(later[: len(earlier)] == earlier for earlier, later in pairwise(turns))
    [level] = json.loads(out.read_text())["levels"]
    assert [(t["turn"], t["completed"]) for t in level["turns"]] == [(1, 4), (2, 2), (3, 2)]
    assert "turn 2 (c=2): 2 answered" in result.stdout
    # the think time is not waiting in the client: a turn is due when the thinking ends
    assert level["client_wait_ms"]["p99"] < 50


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--turns", "0"], "error: --turns must be at least 1, e.g. --turns 4.\n"),
        (
            ["--think-time", "-1"],
            "error: --think-time must be 0 seconds or more, e.g. --think-time 2.\n",
        ),
        (
            ["--turns", "3", "--rate", "2"],
            "error: --turns runs each conversation in a closed loop; drop --rate and --sweep.\n",
        ),
        (
            ["--turns", "3", "--shared-prefix", "2:2"],
            "error: --turns makes its own conversations; drop --dataset and --shared-prefix.\n",
        ),
    ],
)
def test_bad_conversations_are_refused(run: Run, args: list[str], message: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run("bench", "--url", url, "--protocol", "openai-text", "--model", "m", *args)
    assert result.exit_code == 2
    assert result.stderr == message
