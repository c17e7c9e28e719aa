"""`toolkit status`: a row per toolkit container, with what its server says it is doing.

Read from the engine and the containers' labels alone (no catalog, no Click, no pydantic), so the
fast path of `toolkit status` and the CLI share this table.
"""

from __future__ import annotations

import datetime as dt

from toolkit.catalog import names
from toolkit.errors import ToolkitError
from toolkit.host.engine import Container, connect
from toolkit.lifecycle import watch
from toolkit.lifecycle.running import Service, containers


def status(name: str | None = None) -> list[dict[str, object]]:
    """A row per toolkit container: its service, state, health, URL, GPUs and uptime."""
    engine = connect()
    rows: list[dict[str, object]] = []
    for found in containers(engine, name):
        service = Service.from_labels(found.labels)
        load: dict[str, float] = {}
        if found.status == "running" and names.label("metrics") in found.labels:
            from toolkit.observe import metrics

            load = metrics.load_now(found)
        rows.append(
            {
                "config": service.name,
                "replica": service.replica_name,
                "model": service.model,
                "protocol": service.protocol,
                "state": found.status,
                "health": _health(found, service),
                "port": service.port,
                "url": service.url,
                "gpus": ",".join(service.gpus) or "cpu",
                "uptime_s": _uptime(found.started_at) if found.status == "running" else 0,
                "container": found.name,
            }
            | watch.status_fields(found)
            | {key: load.get(key) for key in ("running", "waiting", "kv_cache")}
        )
    return sorted(rows, key=lambda r: (str(r["config"]), str(r["replica"])))


def _health(found: Container, service: Service) -> str:
    """Docker's health, except that a model already listed reads "ready" (what `start` said)
    while Docker's first healthcheck is still to come."""
    if found.status != "running" or found.health != "starting":
        return found.health
    import json
    import urllib.request

    from toolkit import protocols

    try:
        listing = protocols.spec(service.protocol).listing
        with urllib.request.urlopen(service.url + listing.path, timeout=1) as answer:
            listed = listing.names(json.load(answer))
    except (OSError, ValueError, KeyError, TypeError, ToolkitError):
        return found.health
    return "ready" if service.model in listed else found.health


def _uptime(started_at: str) -> int:
    try:
        started = dt.datetime.fromisoformat(started_at[:26].rstrip("Z") + "+00:00")
    except ValueError:
        return 0
    return max(0, int((dt.datetime.now(dt.UTC) - started).total_seconds()))
