"""Drive the load: warm-up, open- and closed-loop levels, the sweep, and /metrics around each.

One event loop, one aiohttp session per level. Open-loop sends are started at their scheduled
times whether or not earlier requests have finished; closed-loop workers send the next request as
soon as their last one ends.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from toolkit.bench import metrics
from toolkit.bench.client import send, session
from toolkit.bench.load import (
    Level,
    Settings,
    arrivals,
    load_dataset,
    load_trace,
    shared_prefix_messages,
    synthetic_messages,
    trace_messages,
    trace_schedule,
)
from toolkit.errors import ToolkitError
from toolkit.protocols import spec
from toolkit.protocols.measure import Result

DEFAULT_REQUESTS = 100
SWEEP_CONCURRENCY = 32
# --find-max-rate: open-loop probes after the saturation run, halving the interval each time
SEARCH_PROBES = 6
SEARCH_HEADROOM = 1.25  # the search's upper end, as a multiple of the saturated rate
Progress = Callable[[str, int, int | None, int], None]  # label, done, total, errors


class BenchError(ToolkitError):
    """The run cannot go on (exit status 1)."""


@dataclass(frozen=True)
class Target:
    url: str
    protocol: str
    model: str
    api_key: str | None = None


@dataclass
class LevelRun:
    level: Level
    results: list[Result]
    duration: float  # first scheduled send to last answer, seconds
    server: dict[str, Any] | None
    slo_met: bool | None = None  # --find-max-rate: did this probe meet every SLO


class Runner:
    def __init__(
        self,
        target: Target,
        settings: Settings,
        progress: Progress | None = None,
        keep_text: bool = False,
        judge: Callable[[LevelRun], bool] | None = None,
        count: Callable[[str], int] | None = None,
    ) -> None:
        self.target = target
        self.settings = settings
        self.progress = progress
        self.keep_text = keep_text
        self.judge = judge  # --find-max-rate: whether a level met every SLO
        # count: the --tokenizer, for a ShareGPT reply's length
        self.dataset = load_dataset(settings.dataset, count) if settings.dataset else None
        self.trace = load_trace(settings.trace) if settings.trace else None
        self.count = itertools.count()

    def body(self, index: int) -> dict[str, Any]:
        s = self.settings
        output = s.output_tokens
        if self.dataset:
            prompt = self.dataset[index % len(self.dataset)]
            messages = prompt.messages
            if s.dataset_output and prompt.output_tokens:
                output = prompt.output_tokens
        elif s.shared_prefix:
            messages = shared_prefix_messages(
                s.shared_prefix, s.prefix_tokens, s.prompt_tokens, index
            )
        else:
            messages = synthetic_messages(s.prompt_tokens, index)
        size = s.sizes[index % len(s.sizes)]
        body = spec(self.target.protocol).bench_body
        return body(self.target.model, messages, output, s.ignore_eos, size)

    def bound(self) -> tuple[int | None, float | None]:
        s = self.settings
        if s.requests is None and s.duration is None:
            return (None, None) if s.trace else (DEFAULT_REQUESTS, None)
        return s.requests, s.duration

    async def _metrics(self, http: aiohttp.ClientSession) -> metrics.Samples | None:
        if not spec(self.target.protocol).server_metrics:
            return None
        try:
            async with http.get(f"{self.target.url}/metrics") as response:
                if response.status != 200:
                    return None
                return metrics.parse(await response.text(), self.target.model)
        except (TimeoutError, aiohttp.ClientError, OSError):
            return None

    async def level(self, level: Level, label: str) -> LevelRun:
        count, duration = self.bound()
        # 0: aiohttp's "no limit", for open loops unless --connections caps them
        connections = self.settings.connections or level.concurrency or 0
        async with session(connections, self.settings.timeout, self.target.api_key) as http:
            before = await self._metrics(http)
            t0 = time.perf_counter()
            if level.rate is not None or level.trace is not None:
                results = await self._open(http, level, count, duration, t0, label)
            else:
                results = await self._closed(http, level, count, duration, t0, label)
            elapsed = max((r.end for r in results), default=0.0) - min(
                (r.scheduled for r in results), default=0.0
            )
            after = await self._metrics(http)
        server = metrics.difference(before, after) if before is not None and after else None
        return LevelRun(level, results, elapsed, server)

    def _report(self, label: str, results: list[Result], total: int | None) -> None:
        if self.progress:
            self.progress(label, len(results), total, sum(not r.ok for r in results))

    async def _one(
        self,
        http: aiohttp.ClientSession,
        scheduled: float,
        t0: float,
        done: list[Result],
        label: str,
        total: int | None,
        body: dict[str, Any] | None = None,
    ) -> None:
        body = body or self.body(next(self.count))
        t = self.target
        result = await send(http, t.protocol, t.url, body, scheduled, t0, self.keep_text)
        done.append(result)
        self._report(label, done, total)

    async def _open(
        self,
        http: aiohttp.ClientSession,
        level: Level,
        count: int | None,
        duration: float | None,
        t0: float,
        label: str,
    ) -> list[Result]:
        done: list[Result] = []
        tasks = []
        for at, body in self._schedule(level, count, duration):
            delay = at - (time.perf_counter() - t0)
            await asyncio.sleep(max(delay, 0))
            tasks.append(asyncio.create_task(self._one(http, at, t0, done, label, count, body)))
        await asyncio.gather(*tasks)
        return done

    def _schedule(
        self, level: Level, count: int | None, duration: float | None
    ) -> Iterator[tuple[float, dict[str, Any] | None]]:
        """Open-loop send times, each with its request body when the trace fixes it (None: the
        next synthetic or dataset prompt)."""
        if level.trace is None or self.trace is None:
            yield from ((at, None) for at in arrivals(level, count, duration, self.settings.seed))
            return
        assert level.speed is not None
        s, protocol = self.settings, spec(self.target.protocol)
        for index, (at, request) in enumerate(
            trace_schedule(self.trace, level.speed, count, duration)
        ):
            messages = trace_messages(request, index)
            body = protocol.bench_body(
                self.target.model, messages, request.output_length, s.ignore_eos, s.sizes[0]
            )
            yield at, body

    async def _closed(
        self,
        http: aiohttp.ClientSession,
        level: Level,
        count: int | None,
        duration: float | None,
        t0: float,
        label: str,
    ) -> list[Result]:
        done: list[Result] = []
        tickets = itertools.count()

        async def worker() -> None:
            while (count is None or next(tickets) < count) and (
                duration is None or time.perf_counter() - t0 < duration
            ):
                await self._one(http, time.perf_counter() - t0, t0, done, label, count)

        async def conversations() -> None:
            """Each slot holds one conversation at a time: its history grows by the question
            and the answer of every turn; after --turns turns (or a failure) a new one starts."""
            t, s = self.target, self.settings
            while True:
                history: list[dict[str, Any]] = []
                for turn in range(s.turns):
                    if turn and s.think_time:
                        await asyncio.sleep(s.think_time)
                    if (count is not None and next(tickets) >= count) or (
                        duration is not None and time.perf_counter() - t0 >= duration
                    ):
                        return
                    history += synthetic_messages(s.prompt_tokens, next(self.count))
                    size = s.sizes[0]
                    body = spec(t.protocol).bench_body(
                        t.model, list(history), s.output_tokens, s.ignore_eos, size
                    )
                    now = time.perf_counter() - t0
                    result = await send(http, t.protocol, t.url, body, now, t0, keep_text=True)
                    result.turn = turn
                    done.append(result)
                    self._report(label, done, count)
                    if not result.ok:
                        break
                    history.append({"role": "assistant", "content": result.text})

        assert level.concurrency is not None
        slot = conversations if self.settings.turns > 1 else worker
        await asyncio.gather(*(slot() for _ in range(level.concurrency)))
        return done

    async def warmup(self) -> None:
        """A few requests, one at a time, that no figure counts."""
        if self.settings.warmup:
            saved = self.settings
            self.settings = replace(saved, requests=saved.warmup, duration=None)
            try:
                await self.level(Level(concurrency=1), "warm-up")
            finally:
                self.settings = saved

    async def run(self) -> list[LevelRun]:
        await self.warmup()
        s = self.settings
        if s.find_max_rate:
            return await self.search()
        if not s.sweep:
            return [await self.level(s.level, s.level.label())]
        idle = await self.level(Level(concurrency=1), "sweep: idle")
        saturated = await self.level(s.level, "sweep: saturation")
        low, high = (_rate(run) for run in (idle, saturated))
        if high <= 0:
            raise BenchError(
                "no request succeeded at saturation, so the sweep has no rates to step through; "
                "run once with --concurrency to see the errors."
            )
        runs = [idle]
        for step in range(1, s.sweep_steps + 1):
            rate = float(f"{low + (high - low) * step / (s.sweep_steps + 1):.3g}")
            level = Level(rate=rate, poisson=s.level.poisson)
            runs.append(await self.level(level, f"sweep: {level.label()}"))
        return [*runs, saturated]

    async def search(self) -> list[LevelRun]:
        """Bisect open-loop rates between 0 and a little over the saturated rate: a probe that
        meets every SLO raises the lower end, one that misses lowers the upper end."""
        assert self.judge is not None
        s = self.settings
        saturated = await self.level(s.level, "search: saturation")
        high = _rate(saturated) * SEARCH_HEADROOM
        if high <= 0:
            raise BenchError(
                "no request succeeded at saturation, so there is no rate to search; "
                "run once with --concurrency to see the errors."
            )
        low, runs = 0.0, [saturated]
        for _ in range(SEARCH_PROBES):
            level = Level(rate=float(f"{(low + high) / 2:.3g}"), poisson=s.level.poisson)
            probe = await self.level(level, f"search: {level.label()}")
            probe.slo_met = self.judge(probe)
            runs.append(probe)
            assert level.rate is not None
            low, high = (level.rate, high) if probe.slo_met else (low, level.rate)
        return runs


def _rate(run: LevelRun) -> float:
    ok = sum(r.ok for r in run.results)
    return ok / run.duration if run.duration > 0 else 0.0
