"""How a service's container is confined, and how often its health is checked: descriptor data.

Every rendered service drops every Linux capability and may not gain privileges (setuid
binaries, file capabilities); what a backend needs back, a read-only root filesystem, its
scratch tmpfs mounts, its PIDs limit and its healthcheck timing are fields of its descriptor's
`runtime:` block in configs/_backends.yaml, so no module branches on a backend's name.
A CPU service also gets a memory limit: the config's `memory_limit`, else the descriptor's.

The images run as NON_ROOT_UID (the user and the ownership of /cache are made in each image's
Dockerfile), so one cache volume serves every backend: a fresh named volume copies the image's
/cache ownership when first mounted.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.errors import ToolkitError

if TYPE_CHECKING:
    from toolkit.catalog.backends import Backend
    from toolkit.catalog.configs import Config

# The uid (and gid) the images run as: distroless' "nonroot", free in Debian and Ubuntu images.
NON_ROOT_UID = 65532


def compose_fields(backend: Backend, config: Config) -> dict[str, Any]:
    """The compose service keys that confine this config's container, in render order."""
    runtime = backend.runtime
    fields: dict[str, Any] = {}
    if backend.run_as_uid is not None:
        fields["user"] = f"{backend.run_as_uid}:{backend.run_as_uid}"
    fields["cap_drop"] = ["ALL"]
    if runtime.cap_add:
        fields["cap_add"] = list(runtime.cap_add)
    fields["security_opt"] = ["no-new-privileges:true"]
    if runtime.read_only:
        fields["read_only"] = True
    if runtime.tmpfs:
        fields["tmpfs"] = list(runtime.tmpfs)
    fields["pids_limit"] = runtime.pids_limit
    if not config.gpus:
        fields["mem_limit"] = memory_limit(backend, config)
    return fields


def sidecar_fields(pids_limit: int, mem_limit: str) -> dict[str, Any]:
    """The compose keys that confine a service beside the model server (the keyed proxy, the
    replicas' router): the non-root user, no capabilities, no privilege gain, a read-only root
    with a scratch /tmp, and bounds on processes and memory."""
    return {
        "user": f"{NON_ROOT_UID}:{NON_ROOT_UID}",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "read_only": True,
        "tmpfs": ["/tmp"],
        "pids_limit": pids_limit,
        "mem_limit": mem_limit,
    }


def memory_limit(backend: Backend, config: Config) -> str:
    """A CPU service's memory limit as Compose takes it: the config's, else its backend's."""
    return config.memory_limit or backend.runtime.cpu_memory_limit


class UnreadableModel(ToolkitError):
    """A local model directory holds files the server's non-root user cannot read."""


def check_readable(directory: Path, uid: int | None) -> None:
    """Refuse a local model the server, running as `uid`, could not read (0600 files, say)."""
    if uid is None or not directory.is_dir():
        return
    for path in (directory, *directory.rglob("*")):
        info = path.stat()
        needed = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(info.st_mode) else 0)
        if info.st_uid != uid and info.st_mode & needed != needed:
            raise UnreadableModel(
                f"{path} is not readable by other users and the server runs as uid {uid}; "
                f"run chmod -R a+rX {directory}."
            )
