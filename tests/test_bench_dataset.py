"""ShareGPT datasets: the prompts and answer lengths a scripted server received, and the bad
files refused before any request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Run
from tests.servers import ScriptedServer, free_port
from tests.test_bench import MODELS, SERVICE

REPLY = "Paris is the capital of France, by far."  # 39 characters: about 10 tokens
SHAREGPT = [
    {"id": "a", "conversations": [
        {"from": "human", "value": "What is the capital of France?"},
        {"from": "gpt", "value": REPLY},
        {"from": "human", "value": "And of Spain?"},
        {"from": "gpt", "value": "Madrid."},
    ]},
    {"id": "b", "conversations": [  # the first human turn comes second
        {"from": "system", "value": "Be brief."},
        {"from": "human", "value": "Say hi."},
        {"from": "gpt", "value": "Hi" * 10},
    ]},
    {"id": "c", "conversations": [{"from": "human", "value": "Unanswered?"}]},  # skipped
    {"id": "d", "conversations": []},  # skipped
]  # fmt: skip


def _sent(run: Run, tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    """Run four requests over the ShareGPT file above; the chat bodies the server received."""
    dataset = tmp_path / "sharegpt.json"
    dataset.write_text(json.dumps(SHAREGPT))
    answers = {("GET", "/v1/models"): MODELS, ("POST", "/v1/chat/completions"): SERVICE}
    out = tmp_path / "r.json"
    with ScriptedServer(answers) as server:
        result = run(
            "bench", "--url", server.url, "--protocol", "openai-text", "--model", "m",
            "--requests", "4", "--warmup", "0", "--dataset", str(dataset), "--json", str(out),
            *args,
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["config"]["dataset"] == str(dataset)
    return [json.loads(body) for method, _, body in server.requests if method == "POST"]


def test_sharegpt_prompts_are_first_human_turns_and_replies_set_the_length(
    run: Run, tmp_path: Path
) -> None:
    """Without --tokenizer a reply's length is estimated at 4 characters a token."""
    sent = _sent(run, tmp_path)
    assert [b["messages"] for b in sent] == [
        [{"role": "user", "content": "What is the capital of France?"}],
        [{"role": "user", "content": "Say hi."}],
    ] * 2
    assert [b["max_tokens"] for b in sent] == [10, 5, 10, 5]


def test_output_tokens_given_overrides_the_replies(run: Run, tmp_path: Path) -> None:
    assert [b["max_tokens"] for b in _sent(run, tmp_path, "--output-tokens", "7")] == [7] * 4


@pytest.mark.models
def test_the_tokenizer_counts_the_replies(run: Run, tmp_path: Path, tiny_models: Path) -> None:
    """The tiny Llama's tokenizer has one token a character: the reply's length is exact."""
    sent = _sent(run, tmp_path, "--tokenizer", str(tiny_models / "Tiny-Llama"))
    assert [b["max_tokens"] for b in sent] == [len(REPLY), 20, len(REPLY), 20]


HINT = (
    'give a ShareGPT JSON list of {"conversations": [{"from": "human", "value": ...}, ...]} '
    'objects, or a JSONL file with one {"messages": [...]} object a line.\n'
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"conversations": []}, ', "the dataset {path} is not valid JSON; "),
        (
            json.dumps([SHAREGPT[0], {"conversations": [{"from": "human"}]}]),
            "entry 2 of the dataset {path} is not a ShareGPT conversation; ",
        ),
        (
            json.dumps([SHAREGPT[0], "hello"]),
            "entry 2 of the dataset {path} is not a ShareGPT conversation; ",
        ),
        (json.dumps(SHAREGPT[2:]), "the dataset {path} holds no prompts; "),
    ],
)
def test_a_bad_sharegpt_file_is_refused(run: Run, tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    url = f"http://127.0.0.1:{free_port()}"
    result = run("bench", "--url", url, "--protocol", "openai-text", "--model", "m",
                 "--dataset", str(path))  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr == "error: " + message.format(path=path) + HINT
