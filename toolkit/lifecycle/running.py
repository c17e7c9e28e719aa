"""What runs: a toolkit service as its container's labels describe it, and how to find it.

What runs is described by its container's labels, so a running service can be stopped, probed and
read without the catalog it was started from. Every lifecycle step and `status` find services here.
"""

from __future__ import annotations

from typing import NamedTuple

from toolkit.catalog import names
from toolkit.errors import ToolkitError
from toolkit.host.engine import Container, Engine, connect


class Interrupted(ToolkitError):
    """The user interrupted a command (Ctrl-C); what it had started was stopped."""

    exit_code = 130


class Service(NamedTuple):
    """A service as its container's labels describe it: enough to probe, read and stop it."""

    name: str
    model: str
    protocol: str
    port: int
    gpus: list[str]
    bind: str = "127.0.0.1"
    vision: bool = False
    keyed: bool = False  # published through the keyed proxy (toolkit/lifecycle/proxy.py)
    replica: int = 0  # which of `replicas` behind the router (toolkit/service/replicas.py)
    replicas: int = 1

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.bind == "0.0.0.0" else self.bind
        return f"http://{host}:{self.port}"

    @property
    def project(self) -> str:
        return names.project(self.name)

    @classmethod
    def from_labels(cls, labels: dict[str, str]) -> Service:
        def get(key: str) -> str:
            return labels.get(names.label(key), "")

        replica, _, replicas = get("replica").partition("/")
        return cls(
            name=get("config"),
            model=get("model"),
            protocol=get("protocol"),
            port=int(get("port") or 0),
            gpus=[g for g in get("gpus").split(",") if g],
            bind=get("bind") or "127.0.0.1",
            vision=get("vision") == "true",
            keyed=get("keyed") == "true",
            replica=int(replica or 0),
            replicas=int(replicas or 1),
        )

    @property
    def replica_name(self) -> str:
        """`2/3` for the second of three replicas behind the router; empty for one server."""
        return f"{self.replica}/{self.replicas}" if self.replica else ""

    def whole(self, replicas: list[Service]) -> Service:
        """The service its replicas make together: every replica's GPUs, in replica order."""
        ordered = sorted(replicas, key=lambda r: r.replica)
        return self._replace(replica=0, gpus=[gpu for r in ordered for gpu in r.gpus])


class Started(NamedTuple):
    service: Service
    already_running: bool = False
    restarts: int = 0  # Docker's restart count when start found it running


def containers(engine: Engine, name: str | None = None) -> list[Container]:
    """Containers of toolkit services (all states), optionally of one config."""
    return engine.containers(label=names.service_filter(name))


def own_url(found: Container) -> str:
    """Where the host reaches this container's server itself: the service's address, or, for a
    replica behind the router (which publishes no port), its container address; empty for a
    replica not yet on a network."""
    port = found.labels.get(names.label("replica-port"))
    if port is None:
        return Service.from_labels(found.labels).url
    return f"http://{found.address}:{port}" if found.address else ""


def container(engine: Engine, name: str) -> Container | None:
    found = containers(engine, name)
    return found[0] if found else None


def state_of(name: str) -> str | None:
    """The state of this config's container (running, exited, ...), None where there is none."""
    found = container(connect(), name)
    return found.status if found else None


def running_service(name: str) -> Service | None:
    """The service of this config name that runs now, read from its container's labels."""
    found = container(connect(), name)
    return Service.from_labels(found.labels) if found else None
