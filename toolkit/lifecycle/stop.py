"""Stop a service and read its logs: what needs no catalog, only the container's labels.

`stop` is idempotent and leaves no container or network behind; the shared model cache survives
unless asked, and then only when no other service uses it.
"""

from __future__ import annotations

from collections.abc import Iterator

from toolkit.catalog import names
from toolkit.errors import UsageError
from toolkit.host.compose import ComposeError, last_line, run_compose
from toolkit.host.engine import EngineError, VolumeInUse, connect
from toolkit.lifecycle import proxy, watch
from toolkit.lifecycle.credentials import handed_token
from toolkit.lifecycle.running import Service, container, containers


def logs(name: str, follow: bool, tail: int | None, replica: int = 1) -> Iterator[str]:
    """The server's log lines; of one replica (the first by default) behind a router."""
    engine = connect()
    found = containers(engine, name)
    if not found:
        raise EngineError(f"{name} is not running; start it with 'toolkit start {name}'.")
    count = Service.from_labels(found[0].labels).replicas
    if replica > count:
        raise UsageError(
            f"{name} runs {count} replica(s), so there is no replica {replica}; pick one of "
            f"1 to {count}."
        )
    chosen = next((c for c in found if Service.from_labels(c.labels).replica == replica), found[0])
    yield from engine.logs(chosen.id, tail=tail, follow=follow)


def stop(name: str, volumes: bool = False) -> bool:
    """Remove the service's containers and network; True if anything was running.

    With volumes, the shared model cache goes too, unless another service still uses it: then
    nothing is stopped and the error names those services.
    """
    engine = connect()
    if volumes:
        users = sorted(
            {
                c.labels.get(names.label("config"), c.name)
                for c in engine.containers(volume=[names.CACHE_VOLUME])
            }
            - {name}
        )
        if users:
            raise EngineError(
                f"the model cache {names.CACHE_VOLUME} is still used by {', '.join(users)}; "
                "stop those first, then run this again (nothing was stopped)."
            )
    was_running = container(engine, name) is not None
    watch.mark_stopped(name)  # before anything stops: the watchdog leaves it stopped
    try:
        down(name)
    finally:  # what start handed over does not outlive the service, even if down fails
        handed_token(name).unlink(missing_ok=True)
        proxy.remove_key(name)
    if volumes:
        try:
            engine.remove_volume(names.CACHE_VOLUME)
        except VolumeInUse as exc:
            raise EngineError(
                f"{name} was stopped, but the model cache {names.CACHE_VOLUME} is in use "
                f"({exc}); stop what uses it, then run this again."
            ) from None
    return was_running


def down(name: str) -> None:
    result = run_compose(
        ["-p", names.project(name), "down", "--remove-orphans", "--timeout", "10"], capture=True
    )
    if result.returncode != 0:
        raise ComposeError(
            f"docker compose down failed for {name} ({last_line(result)}); "
            f"run 'toolkit stop {name}' again once that is fixed."
        )
