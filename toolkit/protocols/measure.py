"""What one bench request measured, and the helpers each protocol's sender shares to measure it.

Timing is correct by design:
- every time is `perf_counter()` seconds from the run's start;
- open-loop requests are measured from their *scheduled* send time, so a client or server that
  falls behind shows up as latency (no coordinated omission);
- the first token is the first chunk with content (text, reasoning or a tool-call delta), never
  the role-only chunk that vLLM sends first; the first *answer* is the first chunk with text or a
  tool call, so a reasoning model's thinking time shows as the difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiohttp


@dataclass
class Result:
    """What one request did. Times are seconds on the run's clock."""

    scheduled: float
    started: float = 0.0  # the client began the send (left its scheduler)
    sent: float | None = None  # the request's headers went on the wire (after any connection wait)
    first: float | None = None  # first content chunk of any kind, reasoning included
    first_answer: float | None = None  # first chunk of text or a tool call, after any reasoning
    chunks: list[float] = field(default_factory=list)  # arrival of every content chunk
    end: float = 0.0
    output_tokens: int | None = None
    prompt_tokens: int | None = None
    error: str | None = None  # the kind: http-429, stream-error, connection, truncated, ...
    detail: str = ""
    text: str = ""
    size: str | None = None  # openai-image
    images: int = 0
    server_tpot: float | None = None  # Ollama's eval_duration / eval_count, seconds
    turn: int | None = None  # --turns: which turn of its conversation, from 0

    @property
    def ok(self) -> bool:
        return self.error is None

    def content(self, now: float, reasoning: bool = False) -> None:
        """A chunk with content arrived at `now`: only reasoning, or some of the answer."""
        if self.first is None:
            self.first = now
        if not reasoning and self.first_answer is None:
            self.first_answer = now
        self.chunks.append(now)


async def refused(response: aiohttp.ClientResponse, result: Result) -> bool:
    """Record an error status on the result; True if the server refused the request."""
    if response.status < 400:
        return False
    result.error = f"http-{response.status}"
    result.detail = (await response.text())[:200]
    return True


class Lines:
    """Split a byte stream into lines; a partial line waits for the next read.

    aiohttp's `readline` is bounded by its read buffer; the raw chunks, split here, are not."""

    def __init__(self) -> None:
        self.rest = b""

    def feed(self, data: bytes) -> list[bytes]:
        self.rest += data
        *lines, self.rest = self.rest.split(b"\n")
        return lines
