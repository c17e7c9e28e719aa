"""The probe: every check of a protocol's module against a running model, timed.

The checks live in the protocol modules (toolkit/protocols/<protocol>.py); this drives them: the
served name listed first, then the rest, each a Check with its failure kind.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from toolkit.protocols import Listing, spec
from toolkit.protocols.client import Client
from toolkit.protocols.common import Failure, ProbeError

__all__ = [
    "Check",
    "Client",
    "Failure",
    "ProbeError",
    "Verdict",
    "describe",
    "example_request",
    "model_listed",
    "probe",
    "require_listed",
]


@dataclass
class Check:
    name: str
    ok: bool
    latency_ms: float
    detail: str
    failure: Failure | None = None


@dataclass
class Verdict:
    protocol: str
    model: str
    url: str
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "model": self.model,
            "url": self.url,
            "verdict": "pass" if self.passed else "fail",
            "checks": [asdict(c) for c in self.checks],
        }


def _timed(name: str, run: Callable[[], str]) -> Check:
    started = time.perf_counter()
    try:
        detail = run()
        ok, failure = True, None
    except ProbeError as exc:
        detail, ok, failure = str(exc), False, exc.kind
    return Check(name, ok, round((time.perf_counter() - started) * 1000, 1), detail, failure)


def listed(client: Client, listing: Listing) -> list[str]:
    """The served names the server lists."""
    data = client.json(client.request("GET", listing.path))
    try:
        return listing.names(data)
    except (KeyError, TypeError):
        raise ProbeError(
            Failure.MALFORMED, f"{listing.path} is not a model list: {data!r:.200}"
        ) from None


def _require_listed(names: list[str], model: str, where: str) -> str:
    if model not in names:
        raise ProbeError(
            Failure.NOT_LISTED,
            f"{where} does not list '{model}' (it lists: {', '.join(names) or 'none'})",
        )
    return f"'{model}' is listed"


def require_listed(
    protocol: str, base_url: str, model: str, api_key: str | None = None, timeout: float = 1.0
) -> None:
    """Raise ProbeError unless the server lists the served name; its kind tells an endpoint
    that is not reachable from one that answers without the model."""
    listing = spec(protocol).listing
    client = Client(base_url, api_key, timeout)
    try:
        _require_listed(listed(client, listing), model, f"{client.base_url}{listing.path}")
    finally:
        client.close()


def model_listed(
    protocol: str, base_url: str, model: str, api_key: str | None = None, timeout: float = 1.0
) -> bool:
    """Readiness: the server lists the served name (not merely a port that answers)."""
    try:
        require_listed(protocol, base_url, model, api_key, timeout)
    except ProbeError:
        return False
    return True


def probe(
    protocol: str,
    base_url: str,
    model: str,
    *,
    vision: bool = False,
    api_key: str | None = None,
    timeout: float = 120.0,
    size: str = "64x64",
) -> Verdict:
    """Run every check of the protocol; stop at the first failure a later check depends on."""
    chosen = spec(protocol)
    listing = chosen.listing
    client = Client(base_url, api_key, timeout)
    verdict = Verdict(protocol, model, client.base_url)
    try:
        first = _timed(
            "models", lambda: _require_listed(listed(client, listing), model, listing.path)
        )
        verdict.checks.append(first)
        if first.ok:
            checks = chosen.checks(client, model, vision, size)
            verdict.checks.extend(_timed(name, run) for name, run in checks)
    finally:
        client.close()
    return verdict


def example_request(protocol: str, url: str, model: str) -> str:
    """A curl command sending the seed's request, ready to paste (an image is saved to a file)."""
    import shlex

    example = spec(protocol).example
    command = (
        f"curl -s {url}{example.path} -H 'Content-Type: application/json' "
        f"-d {shlex.quote(json.dumps(example.body(model)))}"
    )
    if example.pipe:
        command += f" | {example.pipe}"
    return command


def describe(verdict: Verdict) -> str:
    """Human lines: one per check, then the verdict."""
    lines = [
        f"{'ok  ' if c.ok else 'FAIL'} {c.name:<12} {c.latency_ms:>8.1f} ms  {c.detail}"
        for c in verdict.checks
    ]
    word = "PASS" if verdict.passed else "FAIL"
    lines.append(f"{word}: {verdict.protocol} probe of '{verdict.model}' at {verdict.url}")
    return "\n".join(lines)
