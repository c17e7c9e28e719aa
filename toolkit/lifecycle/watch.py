"""`toolkit watch`: restart toolkit services that run but have turned unhealthy.

Docker restarts a container whose process exits (the compose file's `restart: unless-stopped`),
but not one that runs and fails its healthcheck (moby#28400): a hung server keeps its GPUs and
answers nothing. The watchdog closes that gap.

It runs in the foreground (in a terminal, or as a systemd or supervisor unit) rather than as a
container beside the models: a container would need the engine's socket mounted, which is root on
the host and undoes the hardening of the model containers; it would need an image of its own
carrying the toolkit; and its records would live in a volume instead of the user's state
directory, where `toolkit status` reads them.

How it works:
- it follows the engine's `health_status` events for containers with the toolkit's config label
  (the events API, read in windows of `interval` seconds), and between windows inspects every
  toolkit container, so an unhealthy one is found even if an event was missed;
- an unhealthy service is restarted after a backoff that doubles with each consecutive restart
  (base, 2 x base, ... up to a cap), and not after `max_restarts` consecutive ones: then it is left
  as it is, logged, for a person to read its logs. Once healthy for `reset_after` seconds, the
  consecutive count starts again;
- just before restarting, it inspects the container again and leaves it alone if it recovered,
  is gone, is no longer running (a user's `docker stop` or `docker pause`), or was stopped with
  `toolkit stop`, which writes a stop marker before it stops anything (and `toolkit start`
  clears it). Should a stop begin while a restart is under way, the watchdog stops the container
  again, so it never fights the user;
- every action is a log line; the record of each service (restarts, the last failure and its
  time, keyed to the container's id) is a JSON file in the state directory that `status` reads.

The time from a hang to the restart is at most: retries x (interval + timeout) of the
healthcheck (Docker's probes of a hung server each time out) + one healthcheck interval (the
phase of the first failing probe) + the backoff + the restart's stop timeout (a stopped process
ignores SIGTERM; SIGKILL follows). With the rendered healthcheck (10 s, 10 s, 3 retries), the
default first backoff (10 s) and stop timeout (10 s): 3 x 20 + 10 + 10 + 10 = 90 s. That holds
once the service has passed a healthcheck: Docker counts no failure in the start period
(`start_period`, the config's startup_seconds) before the first passing probe.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from toolkit.catalog import names
from toolkit.errors import ToolkitError
from toolkit.host.engine import Container, Engine, EngineError, Event
from toolkit.paths import state_dir

if TYPE_CHECKING:
    import logging


def _log() -> logging.Logger:
    """The watchdog's logger, imported when it first speaks (status reads this module too)."""
    import logging

    return logging.getLogger("toolkit.watch")


STOP_TIMEOUT = 10  # seconds between SIGTERM and SIGKILL when restarting, as `toolkit stop` waits
WATCH_LOCK = "watch.lock"


class Policy(NamedTuple):
    interval: float = 30.0  # seconds between inspections of every toolkit container
    backoff: float = 10.0  # the first restart's delay; each consecutive one doubles it
    max_backoff: float = 300.0
    max_restarts: int = 5  # consecutive restarts before the watchdog gives up
    reset_after: float = 600.0  # seconds healthy after which the consecutive count restarts

    def delay(self, consecutive: int) -> float:
        return float(min(self.max_backoff, self.backoff * 2**consecutive))


def hang_bound(container: Container, policy: Policy) -> float:
    """The longest a hung server runs before the watchdog has restarted it (see the docstring)."""
    check = container.healthcheck
    if check is None:
        raise ToolkitError(f"{container.name} has no healthcheck, so no hang can be seen.")
    probes = check.retries * (check.interval + check.timeout) + check.interval
    return probes + policy.delay(0) + STOP_TIMEOUT


# --- the records status reads ------------------------------------------------------------------


class Record:
    """What the watchdog knows of one service's container (a plain class: see host/engine.py on
    why no dataclass)."""

    def __init__(
        self,
        container: str = "",
        restarts: int = 0,  # restarts by the watchdog
        # Docker's own restart count, added up before each watchdog restart (a restart resets it).
        docker_restarts: int = 0,
        consecutive: int = 0,
        last_failure: str = "",
        last_failure_at: float = 0.0,
        healthy_since: float = 0.0,
        gave_up: bool = False,
    ) -> None:
        self.container = container
        self.restarts = restarts
        self.docker_restarts = docker_restarts
        self.consecutive = consecutive
        self.last_failure = last_failure
        self.last_failure_at = last_failure_at
        self.healthy_since = healthy_since
        self.gave_up = gave_up

    def as_dict(self) -> dict[str, object]:
        return dict(vars(self))


def _watch_dir() -> Path:
    return state_dir() / "watch"


def _record_path(name: str) -> Path:
    return _watch_dir() / f"{name}.json"


def _stop_marker(name: str) -> Path:
    return _watch_dir() / f"{name}.stopped"


def load(name: str, container_id: str) -> Record:
    """The record of this container; a fresh one for a new container (a new `start`)."""
    try:
        data = json.loads(_record_path(name).read_text(encoding="utf-8"))
        record = Record(**data)
    except (OSError, ValueError, TypeError):
        return Record(container=container_id)
    return record if record.container == container_id else Record(container=container_id)


def save(name: str, record: Record) -> None:
    path = _record_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(record.as_dict(), sort_keys=True), encoding="utf-8")
    temporary.replace(path)


def mark_stopped(name: str) -> None:
    """Written by `toolkit stop` before it stops anything: the watchdog leaves the service be."""
    marker = _stop_marker(name)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{time.time():.3f}\n", encoding="utf-8")


def clear_stopped(name: str) -> None:
    """Removed by `toolkit start`: the service is meant to run again."""
    _stop_marker(name).unlink(missing_ok=True)


def stopped_by_user(name: str) -> bool:
    """Whether `toolkit stop` stopped this service (or the config this replica belongs to)."""
    return _stop_marker(name.partition("#")[0]).exists()


def unit(labels: dict[str, str]) -> str:
    """What the watchdog heals and records: a config's service, or one of its replicas
    (`NAME#2`, toolkit/lifecycle/router.py), each restarted on its own."""
    name = labels.get(names.label("config"), "")
    replica = labels.get(names.label("replica"), "").partition("/")[0]
    return f"{name}#{replica}" if name and replica else name


def status_fields(found: Container) -> dict[str, object]:
    """The restart figures and the last failure of a container, for `toolkit status`.

    `restarts` counts both Docker's restarts (the process exited) and the watchdog's (it hung);
    the last failure is the newer of the watchdog's record and Docker's last exit.
    """
    record = load(unit(found.labels) or found.name, found.id)
    failure, at = record.last_failure, record.last_failure_at
    exited_at = _epoch(found.finished_at)
    if found.restart_count and exited_at > at:
        failure, at = "the server exited; Docker restarted it", exited_at
    return {
        "restarts": record.docker_restarts + found.restart_count + record.restarts,
        "watchdog_restarts": record.restarts,
        "last_failure": failure,
        "last_failure_at": _iso(at) if at else "",
    }


def _epoch(stamp: str) -> float:
    from datetime import datetime

    if not stamp or stamp.startswith("0001-"):
        return 0.0
    try:
        return datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return 0.0


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the watchdog ------------------------------------------------------------------------------


class Watchdog:
    """Follows the engine's events and inspects, restarting unhealthy toolkit services."""

    def __init__(self, engine: Engine, policy: Policy) -> None:
        self.engine = engine
        self.policy = policy
        self.due: dict[str, tuple[str, float]] = {}  # config -> (container id, restart time)
        self.seen: set[tuple[int, str, str]] = set()  # events read twice at a window's edge

    def run(self, until: float | None = None) -> None:
        """Watch until `until` (time.time()), or for ever."""
        _log().info("watching toolkit services (%s)", _describe(self.policy))
        since = time.time()
        self.inspect()
        try:
            while until is None or time.time() < until:
                end = time.time() + self.policy.interval
                if self.due:
                    end = min(end, *(when for _, when in self.due.values()))
                if until is not None:
                    end = min(end, until)
                try:
                    for event in self.engine.events(
                        since,
                        max(end, time.time()),
                        type=["container"],
                        event=["health_status"],
                        label=names.service_filter(),
                    ):
                        self.on_event(event)
                        if self.due and min(when for _, when in self.due.values()) < end:
                            end = (
                                event.time_nano / 1e9
                            )  # a restart falls due before the window ends
                            break
                    since = end
                    self.inspect()
                except EngineError as exc:
                    _log().warning("%s Retrying in %.0f s.", exc, self.policy.interval)
                    time.sleep(self.policy.interval)
                    since = time.time()
        finally:  # also on SIGTERM (a service manager) and Ctrl-C
            _log().info("watchdog stopped")

    def on_event(self, event: Event) -> None:
        key = (event.time_nano, event.id, event.action)
        if key in self.seen:
            return
        self.seen.add(key)
        name = unit(event.attributes)
        if not name:
            return
        found = self.engine.inspect(event.id)
        if found is None:
            return
        if event.action.endswith(": unhealthy"):
            self.failed(name, found)
        elif event.action.endswith(": healthy"):
            self.healthy(name, found)

    def inspect(self) -> None:
        """Every toolkit container, inspected: the fallback for missed events; due restarts."""
        for found in self.engine.containers(label=names.service_filter()):
            name = unit(found.labels)
            if found.status == "running" and found.health == "unhealthy":
                self.failed(name, found)
            elif found.status == "running" and found.health == "healthy":
                self.healthy(name, found)
        now = time.time()
        for name, (container_id, when) in sorted(self.due.items()):
            if when <= now:
                del self.due[name]
                self.restart(name, container_id)

    def failed(self, name: str, found: Container) -> None:
        """An unhealthy service: record the failure once, and schedule its restart."""
        if name in self.due:
            return
        record = load(name, found.id)
        if record.healthy_since and time.time() - record.healthy_since >= self.policy.reset_after:
            record.consecutive, record.gave_up = 0, False
        if record.gave_up:
            return
        # The probe's last line (a traceback's error, curl's message), kept short.
        said = (found.health_output.splitlines() or ["no output"])[-1][:200]
        record.last_failure = f"unhealthy: {said}"
        record.last_failure_at = time.time()
        record.healthy_since = 0.0
        if record.consecutive >= self.policy.max_restarts:
            record.gave_up = True
            save(name, record)
            _log().error(
                "%s is unhealthy after %d restarts in a row; giving up on it (read "
                "'toolkit logs %s', then restart it with 'toolkit stop' and 'toolkit start')",
                name,
                record.consecutive,
                name,
            )
            return
        save(name, record)
        delay = self.policy.delay(record.consecutive)
        self.due[name] = (found.id, time.time() + delay)
        _log().warning(
            "%s is unhealthy (%s); restarting it in %.0f s (restart %d of at most %d in a row)",
            name,
            record.last_failure,
            delay,
            record.consecutive + 1,
            self.policy.max_restarts,
        )

    def healthy(self, name: str, found: Container) -> None:
        record = load(name, found.id)
        if not record.healthy_since:
            record.healthy_since = time.time()
            save(name, record)
            if record.restarts:
                _log().info("%s is healthy again", name)

    def restart(self, name: str, container_id: str) -> None:
        """Restart the container unless it recovered, is gone, or was stopped by its user."""
        found = self.engine.inspect(container_id)
        if found is None:
            _log().info("%s is gone; nothing to restart", name)
            return
        if stopped_by_user(name):
            _log().info("%s was stopped with 'toolkit stop'; leaving it stopped", name)
            return
        if found.status != "running":
            _log().info("%s is %s, not running; leaving it as it is", name, found.status)
            return
        if found.health != "unhealthy":
            _log().info("%s recovered by itself (%s); not restarting it", name, found.health)
            return
        record = load(name, container_id)
        record.docker_restarts += found.restart_count  # a restart resets Docker's count
        record.restarts += 1
        record.consecutive += 1
        save(name, record)
        _log().warning("restarting %s (container %s)", name, found.name)
        if not self.engine.restart(container_id, STOP_TIMEOUT):
            _log().info("%s was removed while restarting", name)
            return
        if stopped_by_user(name):  # `toolkit stop` began meanwhile: do not undo it
            self.engine.stop(container_id, STOP_TIMEOUT)
            _log().info(
                "%s was stopped with 'toolkit stop' while restarting; stopped it again", name
            )
            return
        _log().info(
            "restarted %s (restart %d in a row, %d in all)",
            name,
            record.consecutive,
            record.restarts,
        )


def _describe(policy: Policy) -> str:
    return (
        f"inspection every {policy.interval:g} s, backoff {policy.backoff:g} s doubling up to "
        f"{policy.max_backoff:g} s, at most {policy.max_restarts} restarts in a row"
    )


def watch(policy: Policy, until: float | None = None) -> None:
    """Run the watchdog, the only one on this state directory."""
    from toolkit.host import locks
    from toolkit.host.engine import connect

    engine = connect()
    busy = "another toolkit watch (pid {pid}) is already running; stop it first, or let it watch."
    with locks.held(WATCH_LOCK, 0, busy):
        Watchdog(engine, policy).run(until)
