"""`toolkit bench --find-max-rate`: the search over open-loop rates, against a scripted server
whose capacity is known: two requests at a time, 0.1 s each, so 20 requests/s."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Run
from tests.servers import Answer, ScriptedServer, free_port
from tests.test_bench import MODELS, ROLE, chunk, sse, usage

SERVICE = Answer(
    chunks=sse(ROLE, chunk({"content": "Hi"}, "stop"), usage(1)),
    content_type="text/event-stream",
    pause=0.05,
)
CAPACITY = 2 / 0.1


def test_the_search_finds_the_rate_where_the_slo_starts_to_miss(run: Run, tmp_path: Path) -> None:
    """Under 20/s every answer takes 0.1 s; past it the requests queue and e2e grows with each,
    so e2e p99 under 200 ms holds up to the capacity and no further."""
    answers = {("GET", "/v1/models"): MODELS, ("POST", "/v1/chat/completions"): SERVICE}
    out = tmp_path / "search.json"
    with ScriptedServer(answers, capacity=2) as server:
        result = run(
            "bench", "--url", server.url, "--protocol", "openai-text", "--model", "m",
            "--requests", "40", "--warmup", "0", "--find-max-rate", "--slo", "e2e_p99=200ms",
            "--json", str(out), "--html", str(tmp_path / "search.html"),
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    found = doc["max_rate"]
    assert 0.9 * CAPACITY <= found["rate"] <= 1.1 * CAPACITY, found
    # the curve: the saturation run, then six probes, each judged
    probes = doc["levels"][1:]
    assert [p["target_rate"] for p in probes] == [p["rate"] for p in found["probes"]]
    assert len(probes) == 6 and "slo_met" not in doc["levels"][0]
    assert all(p["slo_met"] == (p["e2e_ms"]["p99"] <= 200) for p in probes)
    best = next(p for p in probes if p["target_rate"] == found["rate"])
    assert found["goodput_per_s"] == best["goodput"]["requests_per_s"] > 0
    line = f"highest rate meeting e2e_p99=200ms: {found['rate']:g}/s, goodput"
    assert line in result.stdout
    page = (tmp_path / "search.html").read_text()
    assert (
        line in page
        and "<th>SLO</th>" in page
        and page.count("<td>missed</td>") == sum(not p["slo_met"] for p in probes)
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--find-max-rate"],
            "error: --find-max-rate needs --slo limits on percentiles, "
            "e.g. --slo ttft_p99=500ms,itl_p99=50ms.\n",
        ),
        (
            ["--find-max-rate", "--slo", "ttft=500ms"],
            "error: unknown SLO 'ttft' for --find-max-rate; name ttft, itl, tpot or e2e with a "
            "percentile, e.g. --slo ttft_p99=500ms,itl_p99=50ms.\n",
        ),
        (
            ["--find-max-rate", "--rate", "5", "--slo", "ttft_p99=1s"],
            "error: --find-max-rate finds its own rates; drop --rate, --sweep and --turns.\n",
        ),
    ],
)
def test_bad_searches_are_refused(run: Run, args: list[str], message: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run("bench", "--url", url, "--protocol", "openai-text", "--model", "m", *args)
    assert result.exit_code == 2
    assert result.stderr == message
