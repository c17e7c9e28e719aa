"""A small, typed client of the Docker Engine API, for the questions the lifecycle asks.

`status`, `start`'s checks and its wait loop ask the engine a handful of questions: is it up,
which toolkit containers exist and in what state, their logs, is an image built, who uses a
volume. Those are a few GET requests over the engine's socket, so they go through the standard
library's HTTP client (a few milliseconds to import) rather than the Docker SDK (about 200 ms),
and come back as typed records. The SDK stays for the streaming work it does well: push, and
saving and loading image archives (toolkit.release.registry, toolkit.release.bundle).
"""

from __future__ import annotations

import json
import socket
import struct
import time
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from toolkit.errors import ToolkitError
from toolkit.host import quick
from toolkit.host.quick import engine_host

if TYPE_CHECKING:
    import http.client


class EngineError(ToolkitError):
    """The engine is unreachable, or a lifecycle step failed."""


class VolumeInUse(EngineError):
    """A volume cannot be removed while containers use it."""


# NamedTuples, not dataclasses: `toolkit status` imports these, and `dataclasses` (with
# `inspect` behind it) and building frozen dataclasses cost it about 20 ms (docs/performance.md).


class Container(NamedTuple):
    """What the toolkit reads of a container: its inspect record, typed."""

    id: str
    name: str
    status: str  # created, running, restarting, exited, dead, paused
    labels: dict[str, str]
    health: str  # starting, healthy, unhealthy, or none
    started_at: str
    restart_count: int
    exit_code: int
    finished_at: str = ""
    health_output: str = ""  # the last healthcheck's output
    healthcheck: Healthcheck | None = None
    address: str = ""  # its IP address on its first network, which the host can reach

    @classmethod
    def from_inspect(cls, data: dict[str, Any]) -> Container:
        state = data.get("State") or {}
        probes = (state.get("Health") or {}).get("Log") or [{}]
        check = (data.get("Config") or {}).get("Healthcheck")
        networks = (data.get("NetworkSettings") or {}).get("Networks") or {}
        return cls(
            id=data["Id"],
            name=data.get("Name", "").lstrip("/"),
            status=state.get("Status", "unknown"),
            labels=(data.get("Config") or {}).get("Labels") or {},
            health=(state.get("Health") or {}).get("Status", "none"),
            started_at=state.get("StartedAt", ""),
            restart_count=int(data.get("RestartCount", 0)),
            exit_code=int(state.get("ExitCode", 0)),
            finished_at=state.get("FinishedAt", ""),
            health_output=str(probes[-1].get("Output", "")).strip(),
            healthcheck=Healthcheck.from_config(check) if check else None,
            address=next((n["IPAddress"] for n in networks.values() if n.get("IPAddress")), ""),
        )


class Healthcheck(NamedTuple):
    """A container's healthcheck timing, in seconds (the engine counts in nanoseconds)."""

    interval: float
    timeout: float
    retries: int

    @classmethod
    def from_config(cls, check: dict[str, Any]) -> Healthcheck:
        # Docker's defaults where the image or compose file leaves a value out.
        return cls(
            interval=int(check.get("Interval") or 30e9) / 1e9,
            timeout=int(check.get("Timeout") or 30e9) / 1e9,
            retries=int(check.get("Retries") or 3),
        )


class Event(NamedTuple):
    """One entry of the engine's event stream: `health_status: unhealthy`, `die`, `start`..."""

    type: str
    action: str
    id: str
    attributes: dict[str, str]
    time_nano: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        actor = data.get("Actor") or {}
        return cls(
            type=data.get("Type", ""),
            action=data.get("Action", ""),
            id=actor.get("ID", data.get("id", "")),
            attributes=actor.get("Attributes") or {},
            time_nano=int(data.get("timeNano", 0)),
        )


class Engine:
    """The Docker engine at DOCKER_HOST (unix:// or plain tcp://)."""

    def __init__(self, host: str | None = None, timeout: float = 30) -> None:
        self.host = host or engine_host()
        self.timeout = timeout
        parsed = urllib.parse.urlparse(self.host)
        if parsed.scheme not in ("unix", "tcp", "http"):
            raise EngineError(
                f"DOCKER_HOST {self.host} is not supported by the toolkit; "
                "use a unix:// socket or a plain tcp:// address."
            )
        self._parsed = parsed

    def _socket(self, timeout: float) -> socket.socket:
        """A connected socket to the engine; OSError where it does not answer."""
        return quick.connect_socket(self._parsed, timeout)

    def _unreachable(self) -> EngineError:
        return EngineError(
            f"the Docker engine at {self.host} is not reachable; start dockerd (or fix "
            "DOCKER_HOST) and try again."
        )

    def _send(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """A streamed answer (logs, events), through http.client, which reads it as it comes."""
        import http.client

        engine = self

        class Connection(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = engine._socket(wait)

        wait = self.timeout if timeout is None else timeout
        connection = Connection("localhost", timeout=wait)
        try:
            connection.request(method, quick.url(path, query), headers={"Host": "docker"})
            return connection, connection.getresponse()
        except OSError:
            connection.close()
            raise self._unreachable() from None

    def request(
        self, method: str, path: str, query: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """One request and its whole answer (toolkit/host/quick.py says how)."""
        try:
            sock = self._socket(self.timeout)
        except OSError:
            raise self._unreachable() from None
        try:
            return quick.exchange(sock, method, quick.url(path, query))
        except (OSError, ValueError):
            raise EngineError(
                f"the Docker engine at {self.host} stopped answering; check that dockerd is "
                "healthy and try again."
            ) from None

    def json(self, path: str, query: dict[str, str] | None = None) -> Any:
        status, body = self.request("GET", path, query)
        if status != 200:
            raise EngineError(f"the Docker engine answered {status} to GET {path}: {_why(body)}")
        return json.loads(body)

    def ping(self) -> None:
        status, _ = self.request("GET", "/_ping")
        if status != 200:
            raise EngineError(
                f"the Docker engine at {self.host} answered {status}; check that dockerd is "
                "healthy and try again."
            )

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = self.json("/info")
        return info

    def version(self) -> str:
        return str(self.json("/version").get("Version", "unknown"))

    def image_exists(self, ref: str) -> bool:
        status, _ = self.request("GET", f"/images/{urllib.parse.quote(ref, safe='')}/json")
        return status == 200

    def image_record(self, ref: str) -> dict[str, Any] | None:
        status, body = self.request("GET", f"/images/{urllib.parse.quote(ref, safe='')}/json")
        return json.loads(body) if status == 200 else None

    def containers(self, **filters: list[str]) -> list[Container]:
        """Containers in every state matching the filters (label=..., volume=...), inspected."""
        found = self.json("/containers/json", {"all": "1", "filters": json.dumps(filters)})
        containers = [self.inspect(entry["Id"]) for entry in found]
        return [c for c in containers if c is not None]

    def inspect(self, container_id: str) -> Container | None:
        status, body = self.request("GET", f"/containers/{container_id}/json")
        if status == 404:
            return None  # removed meanwhile
        if status != 200:
            raise EngineError(f"the Docker engine answered {status} on a container: {_why(body)}")
        return Container.from_inspect(json.loads(body))

    def logs(
        self, container_id: str, tail: int | None = None, follow: bool = False
    ) -> Iterator[str]:
        """The container's output (stdout and stderr), as text chunks."""
        query = {"stdout": "1", "stderr": "1", "tail": "all" if tail is None else str(tail)}
        if follow:
            query["follow"] = "1"
        connection, response = self._send("GET", f"/containers/{container_id}/logs", query)
        if follow and connection.sock is not None:
            connection.sock.settimeout(None)  # a quiet server is no error: wait for its lines
        try:
            if response.status != 200:
                raise EngineError(f"reading the logs failed ({response.status})")
            tty = response.getheader("Content-Type", "") == "application/vnd.docker.raw-stream"
            yield from _frames(response, tty)
        finally:
            connection.close()

    def events(self, since: float, until: float, **filters: list[str]) -> Iterator[Event]:
        """The events between two times (seconds since the epoch); with `until` in the future
        the engine streams them as they happen and ends the stream then."""
        query = {"since": f"{since:.9f}", "until": f"{until:.9f}", "filters": json.dumps(filters)}
        wait = max(0.0, until - time.time()) + self.timeout
        connection, response = self._send("GET", "/events", query, timeout=wait)
        try:
            if response.status != 200:
                raise EngineError(f"reading the engine's events failed ({response.status})")
            while line := response.readline():
                if line.strip():
                    yield Event.from_json(json.loads(line))
        except OSError:
            raise EngineError(
                f"the Docker engine at {self.host} stopped answering while its events were read."
            ) from None
        finally:
            connection.close()

    def restart(self, container_id: str, stop_timeout: int = 10) -> bool:
        """Restart a container (SIGTERM, SIGKILL after stop_timeout s); False if it is gone."""
        status, body = self.request(
            "POST", f"/containers/{container_id}/restart", {"t": str(stop_timeout)}
        )
        if status == 404:
            return False
        if status != 204:
            raise EngineError(f"restarting a container failed ({status}): {_why(body)}")
        return True

    def stop(self, container_id: str, stop_timeout: int = 10) -> None:
        """Stop a running container; a container already stopped or gone is fine."""
        status, body = self.request(
            "POST", f"/containers/{container_id}/stop", {"t": str(stop_timeout)}
        )
        if status not in (204, 304, 404):
            raise EngineError(f"stopping a container failed ({status}): {_why(body)}")

    def remove_volume(self, name: str) -> bool:
        """Remove a volume; False if there was none. VolumeInUse while a container uses it."""
        status, body = self.request("DELETE", f"/volumes/{urllib.parse.quote(name, safe='')}")
        if status == 404:
            return False
        if status == 409:
            raise VolumeInUse(_why(body))
        if status != 204:
            raise EngineError(f"removing volume {name} failed ({status}): {_why(body)}")
        return True


def _frames(response: http.client.HTTPResponse, tty: bool) -> Iterator[str]:
    """Decode the log stream: raw for TTY containers, else 8-byte-headed frames."""
    if tty:
        while chunk := response.read1(65536):
            yield chunk.decode("utf-8", "replace")
        return
    while header := response.read(8):
        if len(header) < 8:
            return
        (size,) = struct.unpack(">I", header[4:])
        yield response.read(size).decode("utf-8", "replace")


def _why(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message", body.decode("utf-8", "replace")))
    except ValueError:
        return body.decode("utf-8", "replace").strip()


def connect() -> Engine:
    """An engine that answers, or one sentence saying what to do."""
    engine = Engine()
    engine.ping()
    return engine


def sdk_client() -> Any:
    """A Docker SDK client, for pushing and for saving and loading image archives."""
    import docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception:
        raise EngineError(
            f"the Docker engine at {engine_host()} is not reachable; start dockerd (or fix "
            "DOCKER_HOST) and try again."
        ) from None
    return client


def not_built(ref: str, name: str) -> EngineError:
    return EngineError(f"image {ref} is not built; run 'toolkit build {name}' first.")


def sdk_image(client: Any, ref: str, name: str) -> Any:
    """The SDK's record of a built image, or the sentence saying to build it."""
    try:
        return client.images.get(ref)
    except Exception:
        raise not_built(ref, name) from None
