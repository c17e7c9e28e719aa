"""What load to send: validated settings, arrival schedules and the prompts.

Everything here is checked before the first request goes out, so bad input costs nothing: each
problem is one sentence naming the flag and what to give instead.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import UsageError

SLO_KEYS = ("ttft", "itl", "tpot", "e2e")
_UNITS = {"ms": 1.0, "s": 1000.0}
# One common English word is one token in the Llama, Qwen and Mistral tokenizers, so N of them
# make a prompt of about N tokens; the server's `usage` gives the exact count.
_FILLER = " hello"
TRACE_BLOCK_TOKENS = 512  # a Mooncake trace's hash_ids: one id per block of 512 prompt tokens


@dataclass(frozen=True)
class Level:
    """One load level: an open-loop rate (constant or Poisson), a closed-loop concurrency, or a
    trace replayed open loop at its own timestamps (`speed` times as fast)."""

    rate: float | None = None
    concurrency: int | None = None
    poisson: bool = False
    trace: str | None = None  # the trace file replayed
    speed: float | None = None  # --trace-speed

    def label(self) -> str:
        if self.trace is not None:
            return f"trace x{self.speed:g}"
        if self.rate is not None:
            return f"{'poisson' if self.poisson else 'constant'} {self.rate:g}/s"
        return f"concurrency {self.concurrency}"

    def as_dict(self) -> dict[str, Any]:
        kind = "trace" if self.trace else "rate" if self.rate is not None else "concurrency"
        return {"kind": kind, **asdict(self)}


@dataclass(frozen=True)
class Settings:
    """The whole load: what `--json` records under "config"."""

    level: Level
    sweep: bool = False
    sweep_steps: int = 4
    requests: int | None = None
    duration: float | None = None
    warmup: int = 2
    prompt_tokens: int = 128
    output_tokens: int = 128
    dataset: str | None = None
    ignore_eos: bool = False
    slo: dict[str, float] = field(default_factory=dict)
    sizes: tuple[str, ...] = ("64x64",)
    seed: int = 0
    timeout: float = 600.0
    connections: int | None = None  # the client's connection cap; None: the level's concurrency
    shared_prefix: tuple[int, int] | None = None  # (system prompts, questions each)
    prefix_tokens: int = 1024  # the length of each shared system prompt
    turns: int = 1  # questions per conversation, each sent with the history so far
    think_time: float = 0.0  # seconds between an answer and the next turn's question
    find_max_rate: bool = False
    slo_targets: dict[str, float] = field(default_factory=dict)  # "ttft_p99" -> ms
    trace: str | None = None  # --trace: a Mooncake-shaped JSONL of timed requests
    trace_speed: float = 1.0
    dataset_output: bool = False  # max_tokens from each ShareGPT reply (no --output-tokens)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["level"] = self.level.as_dict()
        data["slo_ms"] = data.pop("slo")
        data["sizes"] = list(self.sizes)
        return data


def check_load(
    rate: float | None,
    concurrency: int | None,
    sweep: bool,
    requests: int | None,
    duration: float | None,
) -> None:
    """The load flags make sense together, or one sentence saying which does not."""
    if rate is not None and rate <= 0:
        raise UsageError("--rate must be above 0 requests per second, e.g. --rate 5.")
    if concurrency is not None and concurrency < 1:
        raise UsageError("--concurrency must be at least 1, e.g. --concurrency 8.")
    if rate is not None and concurrency is not None:
        raise UsageError("give --rate or --concurrency, not both.")
    if sweep and rate is not None:
        raise UsageError("--sweep finds its own rates; drop --rate.")
    if requests is not None and requests < 1:
        raise UsageError("--requests must be at least 1, e.g. --requests 100.")
    if duration is not None and duration <= 0:
        raise UsageError("--duration must be above 0 seconds, e.g. --duration 60.")


def check_sizes(
    prompt_tokens: int, output_tokens: int, sweep_steps: int, warmup: int, timeout: float
) -> None:
    """Each request's and the run's sizes are positive, or one sentence naming the option."""
    for option, value, example in (
        ("--prompt-tokens", prompt_tokens, 128),
        ("--output-tokens", output_tokens, 128),
        ("--sweep-steps", sweep_steps, 4),
    ):
        if value < 1:
            raise UsageError(f"{option} must be at least 1, e.g. {option} {example}.")
    if warmup < 0:
        raise UsageError("--warmup must be 0 or more requests, e.g. --warmup 2.")
    if timeout <= 0:
        raise UsageError("--timeout must be above 0 seconds, e.g. --timeout 600.")


def check_connections(connections: int | None) -> None:
    if connections is not None and connections < 1:
        raise UsageError("--connections must be at least 1, e.g. --connections 8.")


def parse_slo(text: str | None) -> dict[str, float]:
    """`ttft=500ms,tpot=50ms` -> {"ttft": 500.0, "tpot": 50.0} in milliseconds."""
    slo: dict[str, float] = {}
    for item in filter(None, (text or "").split(",")):
        key, _, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if key not in SLO_KEYS:
            raise UsageError(
                f"unknown SLO key '{key}' in --slo; use ttft, itl, tpot or e2e, "
                "e.g. --slo ttft=500ms,tpot=50ms."
            )
        unit = "ms" if value.endswith("ms") else "s" if value.endswith("s") else ""
        try:
            number = float(value.removesuffix(unit))
            if not unit or number <= 0:
                raise ValueError
        except ValueError:
            raise UsageError(
                f"--slo {key}={value} is not a positive time; "
                f"write it like {key}=500ms or {key}=2s."
            ) from None
        slo[key] = number * _UNITS[unit]
    return slo


def arrivals(level: Level, count: int | None, duration: float | None, seed: int) -> Iterator[float]:
    """Send times in seconds from the start: i/rate, or a Poisson process of the same mean rate."""
    assert level.rate is not None
    rng = random.Random(seed)
    t, i = 0.0, 0
    while (count is None or i < count) and (duration is None or t < duration):
        yield t
        i += 1
        t = t + rng.expovariate(level.rate) if level.poisson else i / level.rate


def check_trace(options: dict[str, Any]) -> None:
    """--trace brings its own schedule and prompts: the flags that make either are refused."""
    if options["trace"] is None:
        if options["trace_speed"] is not None:
            raise UsageError("--trace-speed scales a trace; give --trace FILE.jsonl or drop it.")
        return
    if options["trace_speed"] is not None and options["trace_speed"] <= 0:
        raise UsageError("--trace-speed must be above 0, e.g. --trace-speed 2 for twice as fast.")
    clashes = [
        "rate",
        "concurrency",
        "poisson",
        "sweep",
        "find_max_rate",
        "dataset",
        "shared_prefix",
    ]
    given = [f"--{name.replace('_', '-')}" for name in clashes if options[name]]
    if options["turns"] > 1:
        given.append("--turns")
    if given:
        raise UsageError(f"--trace sends its own schedule and prompts; drop {', '.join(given)}.")


@dataclass(frozen=True)
class TraceRequest:
    """One line of a Mooncake-shaped trace: when the request goes out and its prompt's shape."""

    at: float  # seconds from the trace's start
    input_length: int
    output_length: int
    hash_ids: tuple[int, ...] = ()  # prefix blocks of TRACE_BLOCK_TOKENS; shared ids, shared text


def load_trace(path: str) -> list[TraceRequest]:
    """The requests of a JSONL trace in the order of their timestamps, or one sentence naming
    the file, the line and the field that is wrong."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise UsageError(f"cannot read the trace {path} ({reason}); {_TRACE_HINT}") from None
    requests = [
        _trace_line(path, number, line) for number, line in enumerate(lines, 1) if line.strip()
    ]
    if not requests:
        raise UsageError(f"the trace {path} holds no requests; {_TRACE_HINT}")
    return sorted(requests, key=lambda r: r.at)


_TRACE_HINT = (
    "give one JSON object a line with timestamp (ms), input_length, output_length and optional "
    "hash_ids, as in a Mooncake trace."
)


def _trace_line(path: str, number: int, line: str) -> TraceRequest:
    def whole(value: Any, least: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= least

    def refuse(name: str, rule: str) -> UsageError:
        return UsageError(
            f"line {number} of the trace {path}: {name} must be {rule}; {_TRACE_HINT}"
        )

    try:
        data = json.loads(line)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise UsageError(f"line {number} of the trace {path} is not a JSON object; {_TRACE_HINT}")
    at = data.get("timestamp")
    if isinstance(at, bool) or not isinstance(at, int | float) or not 0 <= at < float("inf"):
        raise refuse("timestamp", "a number of milliseconds of 0 or more")
    for name in ("input_length", "output_length"):
        if not whole(data.get(name), 1):
            raise refuse(name, "a whole number of at least 1")
    hash_ids = data.get("hash_ids", [])
    if not isinstance(hash_ids, list) or not all(whole(i, 0) for i in hash_ids):
        raise refuse("hash_ids", "a list of whole numbers")
    return TraceRequest(at / 1000, data["input_length"], data["output_length"], tuple(hash_ids))


def trace_schedule(
    trace: list[TraceRequest], speed: float, count: int | None, duration: float | None
) -> Iterator[tuple[float, TraceRequest]]:
    """Send times from the trace's own start, `speed` times as fast; --requests keeps the first
    N, --duration the requests due within that many seconds."""
    start = trace[0].at
    for index, request in enumerate(trace):
        at = (request.at - start) / speed
        if (count is not None and index >= count) or (duration is not None and at >= duration):
            return
        yield at, request


def trace_messages(request: TraceRequest, index: int) -> list[dict[str, Any]]:
    """A prompt of about `input_length` tokens made of its hash_ids' blocks: one block's text
    depends on its id alone, so requests with the same leading ids share that prompt prefix.
    Every block but the last is TRACE_BLOCK_TOKENS long; the last takes what is left. A request
    with no hash_ids gets one block of its own, numbered below 0 where no trace's ids are."""
    if not request.hash_ids:
        return [{"role": "user", "content": _block(-1 - index, request.input_length)}]
    *full, last = request.hash_ids
    rest = max(request.input_length - TRACE_BLOCK_TOKENS * len(full), 1)
    blocks = [_block(i, TRACE_BLOCK_TOKENS) for i in full] + [_block(last, rest)]
    return [{"role": "user", "content": "".join(blocks)}]


def _block(block_id: int, tokens: int) -> str:
    return f" block {block_id}:{_FILLER * max(tokens - 4, 1)}"


def synthetic_messages(prompt_tokens: int, index: int) -> list[dict[str, Any]]:
    """A prompt of about `prompt_tokens` tokens; the number in front defeats prefix caching."""
    words = _FILLER * max(prompt_tokens - 4, 1)
    return [{"role": "user", "content": f"{index}:{words}"}]


_TARGET = re.compile(r"(ttft|itl|tpot|e2e)_p(\d{1,2}(?:\.\d+)?)")


def parse_slo_targets(text: str | None) -> dict[str, float]:
    """`ttft_p99=500ms,e2e_p90=2s` -> {"ttft_p99": 500.0, "e2e_p90": 2000.0}, for
    --find-max-rate: limits on a level's percentiles rather than on each request."""
    example = "e.g. --slo ttft_p99=500ms,itl_p99=50ms"
    if not text:
        raise UsageError(f"--find-max-rate needs --slo limits on percentiles, {example}.")
    targets: dict[str, float] = {}
    for item in filter(None, text.split(",")):
        key, _, value = (part.strip() for part in item.partition("="))
        if not _TARGET.fullmatch(key):
            raise UsageError(
                f"unknown SLO '{key}' for --find-max-rate; name ttft, itl, tpot or e2e with a "
                f"percentile, {example}."
            )
        metric = key.partition("_")[0]
        targets[key] = parse_slo(f"{metric}={value}")[metric]
    return targets


def request_limits(targets: dict[str, float]) -> dict[str, float]:
    """The per-request limits the goodput counts under percentile SLOs: a request is good when
    it is within the tightest limit on each metric (`ttft_p99=500ms` -> ttft <= 500 ms)."""
    limits: dict[str, float] = {}
    for key, value in targets.items():
        metric = key.partition("_")[0]
        limits[metric] = min(value, limits.get(metric, value))
    return limits


def check_turns(turns: int, think_time: float, rate: float | None, sweep: bool) -> None:
    if turns < 1:
        raise UsageError("--turns must be at least 1, e.g. --turns 4.")
    if think_time < 0:
        raise UsageError("--think-time must be 0 seconds or more, e.g. --think-time 2.")
    if turns > 1 and (rate is not None or sweep):
        raise UsageError(
            "--turns runs each conversation in a closed loop; drop --rate and --sweep."
        )


def parse_shared_prefix(text: str | None, prefix_tokens: int) -> tuple[int, int] | None:
    """`4:16` -> (4, 16): 4 system prompts, 16 questions asked under each."""
    if text is None:
        return None
    if prefix_tokens < 1:
        raise UsageError("--prefix-tokens must be at least 1, e.g. --prefix-tokens 1024.")
    prompts, _, questions = text.partition(":")
    try:
        found = int(prompts), int(questions)
        if min(found) < 1:
            raise ValueError
    except ValueError:
        raise UsageError(
            f"--shared-prefix {text} is not PROMPTS:QUESTIONS; give two whole numbers of at "
            "least 1, e.g. --shared-prefix 4:16."
        ) from None
    return found


def shared_prefix_messages(
    shared: tuple[int, int], prefix_tokens: int, prompt_tokens: int, index: int
) -> list[dict[str, Any]]:
    """Request `index` of the shared-prefix load: the system prompts take turns (request i asks
    under prompt i mod N), each asking its M questions in order, then all over again.

    Each system prompt starts with its own number, so two prompts share no cached block; each
    question starts with its own, so only the system prompt is common."""
    prompts, questions = shared
    prompt, question = index % prompts, (index // prompts) % questions
    return [
        {"role": "system", "content": f"prompt {prompt}:{_FILLER * max(prefix_tokens - 4, 1)}"},
        {"role": "user", "content": f"question {question}:{_FILLER * max(prompt_tokens - 4, 1)}"},
    ]


@dataclass(frozen=True)
class Prompt:
    """One prompt of a dataset, and the answer length it asks for where the dataset gives one."""

    messages: list[dict[str, Any]]
    output_tokens: int | None = None  # ShareGPT: the gpt reply's length in tokens


_DATASET_HINT = (
    'give a ShareGPT JSON list of {"conversations": [{"from": "human", "value": ...}, ...]} '
    'objects, or a JSONL file with one {"messages": [...]} object a line.'
)


def load_dataset(path: str, count: Callable[[str], int] | None = None) -> list[Prompt]:
    """The prompts of a ShareGPT JSON file (it starts with `[`) or of a JSONL file of chats.

    ShareGPT, as `vllm bench serve` reads it: each conversation's first human turn is the
    prompt, and the gpt turn answering it sets the output length, counted by `count` (the
    --tokenizer) or estimated at CHARS_PER_TOKEN characters a token; a conversation without an
    answered human turn is skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise UsageError(f"cannot read the dataset {path} ({reason}); {_DATASET_HINT}") from None
    if text.lstrip().startswith("["):
        prompts = _sharegpt(path, text, count or _estimate)
    else:
        prompts = [Prompt(messages) for messages in _chats(path, text)]
    if not prompts:
        raise UsageError(f"the dataset {path} holds no prompts; {_DATASET_HINT}")
    return prompts


CHARS_PER_TOKEN = 4  # the usual estimate for English text in BPE tokenizers, without --tokenizer


def _estimate(text: str) -> int:
    return max(round(len(text) / CHARS_PER_TOKEN), 1)


def _sharegpt(path: str, text: str, count: Callable[[str], int]) -> list[Prompt]:
    try:
        data = json.loads(text)
    except ValueError:
        raise UsageError(f"the dataset {path} is not valid JSON; {_DATASET_HINT}") from None
    prompts = []
    for number, item in enumerate(data, 1):
        turns = item.get("conversations") if isinstance(item, dict) else None
        if not isinstance(turns, list) or not all(
            isinstance(t, dict)
            and isinstance(t.get("from"), str)
            and isinstance(t.get("value"), str)
            for t in turns
        ):
            raise UsageError(
                f"entry {number} of the dataset {path} is not a ShareGPT conversation; "
                f"{_DATASET_HINT}"
            )
        speakers = [t["from"] for t in turns]
        if "human" not in speakers:
            continue
        first = speakers.index("human")
        if speakers[first + 1 : first + 2] == ["gpt"]:
            question, reply = turns[first]["value"], turns[first + 1]["value"]
            prompts.append(Prompt([{"role": "user", "content": question}], count(reply)))
    return prompts


def _chats(path: str, text: str) -> list[list[dict[str, Any]]]:
    """Chat conversations from JSONL: one {"messages": [{"role": ..., "content": ...}]} a line."""
    conversations = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            messages = json.loads(line)["messages"]
            if not messages or not all(isinstance(m, dict) and "role" in m for m in messages):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise UsageError(
                f"line {number} of the dataset {path} is not a chat conversation; {_DATASET_HINT}"
            ) from None
        conversations.append(messages)
    return conversations
