"""Fetch a config's weights into the model cache volume before its server starts.

The weights live in the Docker volume the services mount at /cache, so they are fetched there
by a one-off container of the config's own image (no GPU, no port), never on the host: the
volume's host path is root-only and depends on the volume driver, and the image already has the
downloader its server uses. What that container runs, per source kind, is the backend
descriptor's `pull` entry (configs/_backends.yaml); for Hugging Face sources it is
toolkit/lifecycle/hubpull.py, which resumes an interrupted download, reports its progress in JSON
lines and writes a lock file beside the cache (/cache/locks/<config>.json: the commit it resolved
and each file's SHA-256). The lock lives in the volume, not in the state directory, because it
describes the volume: `stop --volumes` drops both together, and every user of the volume sees
the same one.

Here the progress becomes a bar with bytes, rate and ETA; a download that moves no byte for
`stall_minutes` is stopped (it resumes on the next pull); and `start` asks `prepare` first, so
its load timeout counts from the end of the download and a cached config starts offline.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from toolkit.catalog import names
from toolkit.errors import ToolkitError
from toolkit.service.image import image_ref
from toolkit.service.server import server_env

CACHE_MOUNT = "/cache"  # where the compose template mounts the model cache volume
TOKEN_MOUNT = "/run/secrets/hf_token"  # where compose puts the token secret
SCRIPT = Path(__file__).with_name("hubpull.py")
STALL_MINUTES = 10.0
RATE_WINDOW = 10.0  # seconds of progress the rate is measured over
BAR = 20

# Called with the seconds since the step began and a line to show.
Progress = Callable[[float, str], None]


class PullError(ToolkitError):
    """The download failed, stalled or was refused."""


class Job(Protocol):
    """A running pull: its stdout lines as they come, then its exit status."""

    def lines(self) -> Iterator[str]: ...

    def finish(self) -> tuple[int, str]: ...

    def stop(self) -> None: ...


# Starts a pull: the command's words and its environment; the token file to mount, if any.
Launcher = Callable[[list[str], dict[str, str], Path | None], Job]


@dataclass(frozen=True)
class Pulled:
    repo: str
    commit: str
    total: int
    files: int
    lock: str


@dataclass(frozen=True)
class Step:
    """What fetching one config's weights runs, or why nothing needs fetching."""

    command: list[str]
    repo: str
    revision: str
    lock: str
    env: dict[str, str]


def step(catalog: Any, config: Any) -> Step | str:
    """The pull step of this config, or the sentence saying why it has none."""
    backend = catalog.backend(config)
    kind = config.source.kind
    if config.source.local:
        return (
            f"{config.name} serves the local model directory {config.source.local}; "
            "there is nothing to pull."
        )
    words = backend.pull.get(kind)
    if not words:
        return (
            f"{config.name}'s backend ({config.backend}) fetches its {kind} source itself when "
            "it starts; there is nothing to pull beforehand."
        )
    revision = config.source.revision or "main"
    repo = config.source.reference
    lock = f"{CACHE_MOUNT}/locks/{config.name}.json"
    values = {"script": SCRIPT.read_text(encoding="utf-8")}
    command = [word.format_map(values) for word in words]
    env = {
        "HF_HOME": server_env(config, backend)["HF_HOME"],
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    if os.environ.get("HF_ENDPOINT"):
        env["HF_ENDPOINT"] = os.environ["HF_ENDPOINT"]
    return Step(command, repo, revision, lock, env)


def container_launcher(image: str, name: str) -> Launcher:
    """Run pulls in one-off containers of `image` with the model cache volume mounted."""

    def launch(command: list[str], env: dict[str, str], token: Path | None) -> Job:
        import docker.errors

        from toolkit.host.engine import sdk_client

        client = sdk_client()
        volumes = {names.CACHE_VOLUME: {"bind": CACHE_MOUNT, "mode": "rw"}}
        if token is not None:
            volumes[str(token.resolve())] = {"bind": TOKEN_MOUNT, "mode": "ro"}
            env = {**env, "HF_TOKEN_PATH": TOKEN_MOUNT}
        try:
            container = client.containers.run(
                image,
                entrypoint=command,
                environment=env,
                volumes=volumes,
                labels={names.label("pull"): name},
                name=f"{names.project(name)}-pull-{uuid.uuid4().hex[:6]}",
                detach=True,
            )
        except docker.errors.DockerException as exc:
            raise PullError(
                f"the engine could not start the download for {name} ({exc}); "
                f"check 'docker info', then run 'toolkit pull {name}' again."
            ) from None
        return ContainerJob(container)

    return launch


class ContainerJob:
    def __init__(self, container: Any) -> None:
        self.container = container

    def lines(self) -> Iterator[str]:
        pending = b""
        for chunk in self.container.logs(stream=True, follow=True, stdout=True, stderr=False):
            pending += chunk
            *done, pending = pending.split(b"\n")
            yield from (line.decode("utf-8", "replace") for line in done)
        if pending:
            yield pending.decode("utf-8", "replace")

    def finish(self) -> tuple[int, str]:
        code = int(self.container.wait().get("StatusCode", 1))
        errors = self.container.logs(stdout=False, stderr=True, tail=20).decode("utf-8", "replace")
        self.stop()
        return code, errors.strip()

    def stop(self) -> None:
        with contextlib.suppress(Exception):  # already gone
            self.container.remove(force=True)


class Meter:
    """Bytes, rate over the last RATE_WINDOW seconds, ETA; and when bytes last moved."""

    def __init__(self, total: int, now: float) -> None:
        self.total = total
        self.done = 0
        self.moved_at = now
        self.samples: collections.deque[tuple[float, int]] = collections.deque()

    def update(self, done: int, now: float) -> None:
        if done > self.done:
            self.moved_at = now
        self.done = done
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[0][0] > RATE_WINDOW:
            self.samples.popleft()

    @property
    def rate(self) -> float:
        (t0, b0), (t1, b1) = self.samples[0], self.samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def line(self, repo: str) -> str:
        share = self.done / self.total if self.total else 1.0
        filled = int(share * BAR)
        rate = self.rate
        eta = duration((self.total - self.done) / rate) if rate > 0 else "?"
        return (
            f"downloading {repo} [{'#' * filled}{'.' * (BAR - filled)}] {size(self.done)} of "
            f"{size(self.total)} ({share:.0%}), {size(rate)}/s, ETA {eta}"
        )


def size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def duration(seconds: float) -> str:
    from toolkit.output import duration as whole

    return whole(int(seconds))


def run(
    config_name: str,
    plan: Step,
    launch: Launcher,
    token: Path | None,
    progress: Progress,
    stall_minutes: float = STALL_MINUTES,
    clock: Callable[[], float] = time.monotonic,
) -> Pulled:
    """Run the pull step to the end, showing progress; stop it after a stall or an interrupt."""
    args = ["pull", plan.repo, plan.revision, plan.lock]
    job = launch([*plan.command, *args], plan.env, token)
    began = clock()
    meter: Meter | None = None
    result: dict[str, Any] = {}
    try:
        for line in job.lines():
            event = _event(line)
            now = clock()
            kind = event.get("event")
            if kind == "plan":
                meter = Meter(int(event["total"]), now)
            elif kind == "progress" and meter is not None:
                meter.update(int(event["done"]), now)
                progress(now - began, meter.line(plan.repo))
                if now - meter.moved_at > stall_minutes * 60:
                    job.stop()
                    raise PullError(
                        f"the download of {plan.repo} stalled: no bytes for "
                        f"{stall_minutes:g} minute(s) at {size(meter.done)} of "
                        f"{size(meter.total)}; check the network (or HF_ENDPOINT), then run "
                        f"'toolkit pull {config_name}' again: it resumes where it stopped."
                    )
            elif kind == "hashing":
                progress(now - began, f"checking the SHA-256 of {event['files']} file(s)")
            elif kind in ("done", "error"):
                result = event
    except PullError:
        raise
    except KeyboardInterrupt:
        from toolkit.lifecycle.running import Interrupted

        job.stop()
        raise Interrupted(
            f"interrupted; the download of {plan.repo} stopped and resumes where it left off "
            f"on the next 'toolkit pull {config_name}' or 'toolkit start {config_name}'."
        ) from None
    except BaseException:
        job.stop()  # whatever broke the loop, no download keeps running unseen
        raise
    code, errors = job.finish()
    if result.get("event") == "done":
        return Pulled(
            plan.repo,
            str(result["commit"]),
            int(result["total"]),
            int(result["files"]),
            str(result["lock"]),
        )
    why = str(result.get("message") or (errors.splitlines() or [f"exit status {code}"])[-1])
    raise PullError(f"pulling {plan.repo} for {config_name} failed: {why.rstrip('.')}.")


def check(plan: Step, launch: Launcher) -> tuple[str, str]:
    """The cache against the lock: ("complete" | "missing" | "mismatch", reason)."""
    job = launch([*plan.command, "check", plan.repo, plan.revision, plan.lock], plan.env, None)
    answer: dict[str, Any] = {}
    try:
        for line in job.lines():
            event = _event(line)
            if event.get("event") == "check":
                answer = event
    except BaseException:
        job.stop()
        raise
    code, errors = job.finish()
    if not answer:
        why = (errors.splitlines() or [f"exit status {code}"])[-1]
        raise PullError(f"checking the model cache of {plan.repo} failed: {why.rstrip('.')}.")
    return str(answer["state"]), str(answer["reason"])


def _event(line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def image_launcher(catalog: Any, config: Any) -> Launcher:
    """Pull with the config's built image, which holds the downloader its server uses."""
    from toolkit.host.engine import connect, not_built

    image = image_ref(config, catalog.backend(config))
    if not connect().image_exists(image):
        raise not_built(image, config.name)
    return container_launcher(image, config.name)


def pull(
    catalog: Any,
    config: Any,
    progress: Progress,
    stall_minutes: float = STALL_MINUTES,
    launcher: Launcher | None = None,
) -> Pulled | str:
    """`toolkit pull`: resolve the revision again and fetch what the cache lacks; or the
    sentence saying there is nothing to pull. A gated model needs its token first."""
    from toolkit.lifecycle import credentials

    plan = step(catalog, config)
    if isinstance(plan, str):
        return plan
    token = credentials.token_source(config)
    handed = None
    if config.gated:  # handed over as a file the container's user reads, removed after
        token = handed = credentials.hand_over_token(f"{config.name}.pull", token)
    try:
        launch = launcher or image_launcher(catalog, config)
        return run(config.name, plan, launch, token, progress, stall_minutes)
    finally:
        if handed is not None:
            handed.unlink(missing_ok=True)


def prepare(
    catalog: Any,
    config: Any,
    token: Path | None,
    progress: Progress,
    say: Callable[[str], None],
    stall_minutes: float = STALL_MINUTES,
    launcher: Launcher | None = None,
) -> bool:
    """`start`'s first step: pull when the cache lacks the weights or no longer matches its
    lock (saying so); True when the cache then matches the lock, so the server starts offline."""
    plan = step(catalog, config)
    if isinstance(plan, str):
        return False
    launch = launcher or image_launcher(catalog, config)
    state, reason = check(plan, launch)
    if state == "complete":
        return True
    if state == "mismatch":
        say(
            f"{config.name}'s model cache no longer matches its lock ({reason}); "
            f"pulling {plan.repo} at {plan.revision} again."
        )
    run(config.name, plan, launch, token, progress, stall_minutes)
    return True
