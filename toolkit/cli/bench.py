"""The `bench` command. Light at import (Click only): `toolkit --help` must not pull in aiohttp.

`toolkit bench NAME|--url ...` runs a benchmark; `toolkit bench compare A.json B.json` renders
saved results side by side. One command with a free first argument, rather than a group, so that
`toolkit bench NAME` reads like `toolkit probe NAME`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from toolkit.errors import ToolkitError, UsageError
from toolkit.protocols import Protocol


@click.command("bench")
@click.argument("args", nargs=-1, metavar="[NAME | compare A.json B.json ...]")
@click.option("--url", help="Benchmark this endpoint instead of a catalog service.")
@click.option(
    "--protocol",
    type=click.Choice([p.value for p in Protocol]),
    help="The endpoint's protocol (with --url).",
)
@click.option("--model", help="The served model name (with --url).")
@click.option("--api-key", envvar="TOOLKIT_API_KEY", help="Bearer token, if the server has one.")
@click.option("--rate", type=float, help="Open loop: requests per second, sent on schedule.")
@click.option("--poisson", is_flag=True, help="With --rate: Poisson arrivals instead of constant.")
@click.option(
    "--concurrency",
    type=int,
    help="Closed loop: requests in flight (with --sweep: at saturation).  [default: 1; 32]",
)
@click.option(
    "--connections",
    type=int,
    help="Cap the client's connections; requests beyond it wait in the client.  "
    "[default: the concurrency; no cap with --rate]",
)
@click.option("--sweep", is_flag=True, help="Find saturation, then step rates between idle and it.")
@click.option(
    "--find-max-rate",
    is_flag=True,
    help="Search open-loop rates for the highest meeting --slo (percentiles: ttft_p99=500ms).",
)
@click.option(
    "--sweep-steps", default=4, show_default=True, help="Rates between idle and saturation."
)
@click.option("--requests", type=int, help="Requests per level.  [default: 100 unless --duration]")
@click.option("--duration", type=float, help="Seconds per level.")
@click.option("--warmup", default=2, show_default=True, help="Uncounted requests before the run.")
@click.option("--prompt-tokens", default=128, show_default=True, help="Synthetic prompt length.")
@click.option("--output-tokens", default=128, show_default=True, help="max_tokens of each request.")
@click.option(
    "--shared-prefix",
    metavar="N:M",
    help="N system prompts of --prefix-tokens, M questions each, taking turns (prefix caching).",
)
@click.option(
    "--prefix-tokens", default=1024, show_default=True, help="Length of each shared system prompt."
)
@click.option(
    "--turns",
    default=1,
    show_default=True,
    help="Turns per conversation: each question is sent with the history so far.",
)
@click.option(
    "--think-time",
    default=0.0,
    show_default=True,
    help="Seconds between an answer and the next turn.",
)
@click.option(
    "--dataset",
    metavar="FILE",
    help="Prompts from a ShareGPT JSON (first human turn; the reply sets the output length) "
    'or a JSONL of {"messages": [...]} chats.',
)
@click.option(
    "--trace",
    metavar="FILE",
    help="Replay a Mooncake-style JSONL trace: each request at its timestamp, open loop.",
)
@click.option(
    "--trace-speed",
    type=float,
    help="Replay the trace this many times as fast.  [default: 1.0]",
)
@click.option("--ignore-eos", is_flag=True, help="Ask vLLM for exactly --output-tokens tokens.")
@click.option("--slo", help="Goodput limits, e.g. ttft=500ms,tpot=50ms (keys: ttft itl tpot e2e).")
@click.option(
    "--size", "sizes", multiple=True, help="openai-image sizes, repeatable.  [default: 64x64]"
)
@click.option("--tokenizer", metavar="DIR", help="Cross-check usage counts with this tokenizer.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds per request.")
@click.option("--seed", default=0, show_default=True, help="Seed of the Poisson schedule.")
@click.option("--json", "json_file", metavar="FILE", help="Write the versioned JSON result.")
@click.option("--html", "html_file", metavar="FILE", help="Write a self-contained HTML report.")
@click.option("--calibrate", is_flag=True, help="Measure this client's ceiling on a no-op server.")
@click.option(
    "--port", default=0, help="Port of the no-op server for --calibrate.  [default: free]"
)
@click.pass_context
def bench(ctx: click.Context, /, args: tuple[str, ...], **options: Any) -> None:
    """Load-test a running model: latency, throughput, goodput.

    Reports TTFT, ITL, TPOT and end-to-end latency, tokens/s and the server's own metrics.
    TTFT counts to the first content (never a role-only chunk); open-loop latencies count from
    the scheduled send time; token counts come from the server's usage.

    \b
    Examples:
      toolkit bench llama3-70b_4 --rate 5 --duration 60 --slo ttft=500ms,tpot=50ms
      toolkit bench --url http://127.0.0.1:1042 --protocol openai-text --model Llama3-70B \\
        --concurrency 8 --requests 200 --json run.json --html run.html
      toolkit bench llama3-70b_4 --sweep --requests 200 --json sweep.json
      toolkit bench llama3-70b_4 --rate 4 --dataset ShareGPT_V3_unfiltered_cleaned_split.json
      toolkit bench llama3-70b_4 --trace mooncake.jsonl --trace-speed 2 --ignore-eos
      toolkit bench --calibrate
      toolkit bench compare a.json b.json --html compare.html
    """
    if args[:1] == ("compare",):
        _refuse_load_options(ctx, "compare takes JSON files and --html only")
        _compare(list(args[1:]), options["html_file"])
        return
    if options["calibrate"]:
        _calibrate(options["port"], options["requests"] or 3000)
        return
    if len(args) > 1:
        raise UsageError("give one config NAME, or 'compare' and JSON files.")
    _run(ctx, args[0] if args else None, options)


def _endpoint(
    ctx: click.Context, name: str | None, options: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """The target and what is known of the service (config, engine arguments, image digest)."""
    from toolkit.bench.runner import Target
    from toolkit.bench.service import describe
    from toolkit.cli.common import State, endpoint

    state = ctx.find_object(State)
    assert state is not None
    found = endpoint(state, name, options["url"], options["protocol"], options["model"])
    target = Target(found.url, found.protocol, found.model, options["api_key"])
    if found.service is None or found.catalog is None:
        return target, {}
    return target, describe(found.service, found.catalog, found.config)


def _settings(options: dict[str, Any], output_given: bool) -> Any:
    """The validated load; `output_given`: --output-tokens was on the command line, so a
    ShareGPT dataset's replies do not set the answers' lengths."""
    from toolkit.bench.load import (
        Level,
        Settings,
        check_connections,
        check_load,
        check_sizes,
        check_trace,
        check_turns,
        load_dataset,
        load_trace,
        parse_shared_prefix,
        parse_slo,
        parse_slo_targets,
        request_limits,
    )
    from toolkit.bench.runner import SWEEP_CONCURRENCY

    o = options
    check_load(o["rate"], o["concurrency"], o["sweep"], o["requests"], o["duration"])
    check_sizes(o["prompt_tokens"], o["output_tokens"], o["sweep_steps"], o["warmup"], o["timeout"])
    check_connections(o["connections"])
    check_trace(o)
    check_turns(o["turns"], o["think_time"], o["rate"], o["sweep"])
    shared = parse_shared_prefix(o["shared_prefix"], o["prefix_tokens"])
    if shared and o["dataset"]:
        raise UsageError("--shared-prefix makes its own prompts; drop --dataset.")
    if o["turns"] > 1 and (shared or o["dataset"]):
        raise UsageError("--turns makes its own conversations; drop --dataset and --shared-prefix.")
    targets: dict[str, float] = {}
    if o["find_max_rate"]:
        if o["rate"] is not None or o["sweep"] or o["turns"] > 1:
            raise UsageError(
                "--find-max-rate finds its own rates; drop --rate, --sweep and --turns."
            )
        targets = parse_slo_targets(o["slo"])
        slo = request_limits(targets)
    else:
        slo = parse_slo(o["slo"])
    if o["dataset"]:
        load_dataset(o["dataset"])
    if o["trace"]:
        load_trace(o["trace"])
        level = Level(trace=o["trace"], speed=o["trace_speed"] or 1.0)
    elif o["rate"] is not None:
        level = Level(rate=o["rate"], poisson=o["poisson"])
    else:
        default = SWEEP_CONCURRENCY if o["sweep"] or o["find_max_rate"] else 1
        level = Level(concurrency=o["concurrency"] or default, poisson=o["poisson"])
    return Settings(
        level=level,
        sweep=o["sweep"],
        sweep_steps=o["sweep_steps"],
        requests=o["requests"],
        duration=o["duration"],
        warmup=o["warmup"],
        prompt_tokens=o["prompt_tokens"],
        output_tokens=o["output_tokens"],
        dataset=o["dataset"],
        ignore_eos=o["ignore_eos"],
        slo=slo,
        sizes=tuple(o["sizes"]) or ("64x64",),
        seed=o["seed"],
        timeout=o["timeout"],
        connections=o["connections"],
        shared_prefix=shared,
        prefix_tokens=o["prefix_tokens"],
        turns=o["turns"],
        think_time=o["think_time"],
        find_max_rate=o["find_max_rate"],
        slo_targets=targets,
        trace=o["trace"],
        trace_speed=o["trace_speed"] or 1.0,
        dataset_output=bool(o["dataset"]) and not output_given,
    )


def _run(ctx: click.Context, name: str | None, options: dict[str, Any]) -> None:
    import asyncio

    from toolkit.bench import calibrate, report, tokens
    from toolkit.bench.runner import Runner

    given = ctx.get_parameter_source("output_tokens") is not click.core.ParameterSource.DEFAULT
    settings = _settings(options, given)
    target, service = _endpoint(ctx, name, options)
    count = tokens.load(options["tokenizer"]) if options["tokenizer"] else None
    _require_listed(target, name)
    runner = Runner(
        target,
        settings,
        _progress() if sys.stderr.isatty() else None,
        bool(count),
        judge=lambda run: report.slo_met(run, settings.slo_targets),
        count=count,
    )
    runs = asyncio.run(runner.run())
    if sys.stderr.isatty():
        click.echo("", err=True)
    check = None
    if count:
        check = tokens.cross_check([r for run in runs for r in run.results], count)
    doc = report.document(
        target, settings, runs, service=service, ceiling=calibrate.saved(), token_check=check
    )
    click.echo(report.table(doc))
    _write(doc, options["json_file"], options["html_file"])


def _require_listed(target: Any, name: str | None) -> None:
    """Before any load: the endpoint answers and lists the model. A --model it does not list is
    the user's input (exit 2); an endpoint that is not reachable, or a service that does not
    serve its model yet, is a failed step (exit 1)."""
    from toolkit.protocols.probe import Failure, ProbeError, require_listed

    try:
        require_listed(target.protocol, target.url, target.model, target.api_key, timeout=10)
    except ProbeError as exc:
        if exc.kind is Failure.UNREACHABLE:
            raise ToolkitError(f"{exc}; check the URL and that the server runs.") from None
        if exc.kind is Failure.NOT_LISTED and name is None:
            raise UsageError(f"{exc}; give --model a name it lists.") from None
        if exc.kind is Failure.NOT_LISTED:
            raise ToolkitError(
                f"{exc}; wait until 'toolkit status {name}' says it is healthy."
            ) from None
        raise ToolkitError(f"{exc}; check the protocol and the API key.") from None


def _write(doc: dict[str, Any], json_file: str | None, html_file: str | None) -> None:
    if json_file:
        Path(json_file).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", "utf-8")
        click.echo(f"wrote {json_file}")
    if html_file:
        from toolkit.bench import page

        Path(html_file).write_text(page.render([doc]), "utf-8")
        click.echo(f"wrote {html_file}")


def _progress() -> Any:
    def show(label: str, done: int, total: int | None, errors: int) -> None:
        width = 30
        if total:
            filled = width * done // total
            bar = "#" * filled + "." * (width - filled)
            text = f"\r{label:<28} [{bar}] {done}/{total}"
        else:
            text = f"\r{label:<28} {done} done"
        click.echo(text + (f"  {errors} failed" if errors else ""), err=True, nl=False)

    return show


def _calibrate(port: int, requests: int) -> None:
    from toolkit.bench import calibrate
    from toolkit.bench.noop import free_port

    ceiling = calibrate.measure(port or free_port(), requests)
    path = calibrate.save(ceiling)
    click.echo(
        f"client ceiling: {ceiling['requests_per_s']:g} req/s, "
        f"{ceiling['output_tokens_per_s']:g} streamed tokens/s "
        f"(closed loop, {ceiling['concurrency']} connections, no-op server); saved to {path}"
    )


def _refuse_load_options(ctx: click.Context, what: str) -> None:
    """An option that would change a run, given where none runs, is refused rather than
    silently ignored."""
    given = [
        param.opts[0]
        for param in ctx.command.params
        if param.name not in (None, "args", "html_file")
        and ctx.get_parameter_source(param.name) is click.core.ParameterSource.COMMANDLINE
    ]
    if given:
        raise UsageError(f"{what}; drop {', '.join(given)}.")


def _compare(files: list[str], html_file: str | None) -> None:
    from toolkit.bench import page, report

    if len(files) < 2:
        raise UsageError(
            "compare needs two or more JSON files, e.g. toolkit bench compare a.json b.json."
        )
    docs = [page.read(path) for path in files]
    names = [Path(f).stem for f in files]
    click.echo(report.compare_table(docs, names))
    if html_file:
        Path(html_file).write_text(page.render(docs, names=names), "utf-8")
        click.echo(f"wrote {html_file}")
