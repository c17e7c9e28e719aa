"""The API protocols a service speaks, one module each, found by name.

A protocol's module (`openai-text` -> toolkit/protocols/openai_text.py) defines `SPEC`: where
it lists its served models, the paths the keyed proxy passes, the example request, the probe's
checks and the bench's sender. Adding a protocol is that module and its line in `Protocol`.

Light on purpose: the CLI's option choices and the catalog import this, so it imports neither
an HTTP client nor a protocol module until `spec()` asks for one (and a protocol module imports
its HTTP client only inside the functions that send).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from toolkit.errors import ToolkitError

if TYPE_CHECKING:
    import aiohttp

    from toolkit.protocols.client import Client
    from toolkit.protocols.measure import Result

    # The probe's checks for a model: (name, run) pairs; run returns a detail or raises ProbeError.
    Checks = Callable[[Client, str, bool, str], list[tuple[str, Callable[[], str]]]]
    # One bench request: (session, base URL, body, result to fill, run's t0, keep the text).
    Sender = Callable[
        [aiohttp.ClientSession, str, dict[str, Any], Result, float, bool], Awaitable[None]
    ]
    # A bench request's body: (model, messages, output tokens, ignore EOS, image size).
    BenchBody = Callable[[str, list[dict[str, Any]], int, bool, str], dict[str, Any]]


class Protocol(StrEnum):
    OPENAI_TEXT = "openai-text"
    OLLAMA_TEXT = "ollama-text"
    OPENAI_IMAGE = "openai-image"


@dataclass(frozen=True)
class Listing:
    """Where a protocol lists its served models: a model is ready when its name is listed."""

    path: str  # GET path
    items: str  # the key of the answer's list of models
    name: str  # the key of each model's served name
    # A tag the server adds to a name given without one ("llama3" lists as "llama3:latest").
    default_tag: str | None = None

    def names(self, answer: Any) -> list[str]:
        """The served names in a listing's JSON; KeyError or TypeError if it is not a listing."""
        names = [str(entry[self.name]) for entry in answer[self.items]]
        if self.default_tag is None:
            return names
        tag = self.default_tag
        return names + [n.removesuffix(tag) for n in names if n.endswith(tag)]


@dataclass(frozen=True)
class Example:
    """The request `toolkit start` suggests, as a curl command to paste."""

    path: str
    body: Callable[[str], dict[str, Any]]  # the served name -> the JSON body
    pipe: str | None = None  # a shell command the answer is piped to (an image saved to a file)


@dataclass(frozen=True)
class ProtocolSpec:
    listing: Listing
    # What the keyed proxy passes: exact paths, then prefixes (ending in /); the rest is 404.
    proxy_paths: tuple[str, ...]
    example: Example
    checks: Checks
    bench_body: BenchBody
    bench_send: Sender
    proxy_prefixes: tuple[str, ...] = ()
    # Whether its servers may publish vLLM's Prometheus /metrics, read around each bench level.
    server_metrics: bool = False

    @property
    def polls(self) -> tuple[str, ...]:
        """The readiness polls' request lines, which progress output leaves out of log tails."""
        return (f"GET {self.listing.path}",)


def module_name(protocol: str) -> str:
    return f"{__name__}.{protocol.replace('-', '_')}"


def spec(protocol: str) -> ProtocolSpec:
    """The protocol's SPEC, its module imported on first use."""
    if protocol not in set(Protocol):
        raise ToolkitError(f"unknown protocol '{protocol}'; use one of {', '.join(Protocol)}.")
    found: ProtocolSpec = importlib.import_module(module_name(protocol)).SPEC
    return found


def polls() -> tuple[str, ...]:
    """Every protocol's readiness polls, once each."""
    return tuple(dict.fromkeys(line for p in Protocol for line in spec(p).polls))
