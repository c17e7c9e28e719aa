"""The state-directory locks, held by real processes: one holder at a time, none left by a kill.

Two `toolkit start` commands racing on the same GPUs need GPUs, which this host lacks; the
engine test tests/engine/test_watch.py races two CPU configs on one port through the CLI, and
these tests prove the lock itself between processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toolkit.host import locks
from toolkit.paths import REPO_ROOT

HOLD = (
    "import sys, time; from toolkit.host import locks\n"
    "with locks.held('test.lock', 0, 'busy'):\n"
    "    print('held', flush=True); time.sleep(60)\n"
)


def holder(env: dict[str, str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD], env=env, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT
    )
    assert process.stdout is not None and process.stdout.readline() == "held\n"
    return process


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, XDG_CACHE_HOME=str(tmp_path), PYTHONPATH=str(REPO_ROOT))


def test_a_second_process_is_refused_while_one_holds_the_lock(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", env["XDG_CACHE_HOME"])
    process = holder(env)
    try:
        path = locks.lock_path("test.lock")
        with pytest.raises(locks.LockBusy) as busy, locks.held("test.lock", 0.3, "{path} {pid}"):
            pass
        assert str(busy.value) == f"{path} {process.pid}"
    finally:
        process.kill()
        process.wait()


def test_a_killed_holder_leaves_no_stale_lock(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", env["XDG_CACHE_HOME"])
    process = holder(env)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with locks.held("test.lock", 0, "busy") as path:
        assert path.read_text() == f"{os.getpid()}\n"


def test_a_waiting_process_gets_the_lock_once_it_is_released(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", env["XDG_CACHE_HOME"])
    process = holder(env)
    began = time.monotonic()
    subprocess.Popen(["sh", "-c", f"sleep 1; kill {process.pid}"])
    with locks.held("test.lock", 30, "busy"):
        assert process.wait() != 0
    assert time.monotonic() - began < 30


def test_the_start_lock_refuses_in_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locks, "START_WAIT_SECONDS", 1.0)
    with locks.held(locks.START_LOCK, 0, "busy"):
        path = locks.lock_path(locks.START_LOCK)
        with pytest.raises(locks.LockBusy) as busy, locks.start_lock():
            pass
    assert str(busy.value) == (
        f"another toolkit start (pid {os.getpid()}) has held {path} for over 1 s; wait for it "
        "to finish, or end it, and run this again."
    )
