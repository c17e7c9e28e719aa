"""Advisory file locks in the state directory, so that check-then-act steps do not race.

`toolkit start` checks that the GPUs and the port are free, then creates the container; two starts
at once could both pass the checks before either container exists. Holding one lock around the
checks and `compose up` makes the second start check after the first has created its container,
so it refuses in one sentence instead of racing. The watchdog takes a lock of its own so that only
one runs. `fcntl.flock` locks belong to the open file: the kernel drops them when the process
dies, even by SIGKILL, so a killed command never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from toolkit.errors import ToolkitError
from toolkit.paths import state_dir

START_LOCK = "start.lock"
START_WAIT_SECONDS = 120.0  # longer than any check plus `compose up -d` takes
POLL_SECONDS = 0.1


class LockBusy(ToolkitError):
    """Another toolkit command holds the lock."""


def lock_path(name: str) -> Path:
    return state_dir() / "locks" / name


@contextlib.contextmanager
def held(name: str, wait: float, busy: str) -> Iterator[Path]:
    """Hold lock `name`, waiting up to `wait` seconds; LockBusy(busy) after that.

    `busy` may name {path} and {pid} (the process that holds the lock, as it wrote it).
    """
    path = lock_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                    raise LockBusy(busy.format(path=path, pid=holder)) from None
                time.sleep(POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the file releases the lock


def start_lock() -> contextlib.AbstractContextManager[Path]:
    """The lock `toolkit start` holds from its checks until `compose up` made the container."""
    return held(
        START_LOCK,
        START_WAIT_SECONDS,
        f"another toolkit start (pid {{pid}}) has held {{path}} for over "
        f"{START_WAIT_SECONDS:.0f} s; wait for it to finish, or end it, and run this again.",
    )
