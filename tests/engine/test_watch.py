"""Faults on the real engine: a killed container, a hung server and the watchdog, a killed
`toolkit start`, two starts racing, and (run alone) a restart of dockerd.

The services are the demo images under names of this file's own (watch-demo-*), tagged from the
images the `built` fixture builds, so other engine tests running at the same time are not
disturbed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine.conftest import toolkit
from tests.servers import free_port, wait_until
from toolkit.catalog.configs import Catalog
from toolkit.host.engine import Engine
from toolkit.lifecycle import running
from toolkit.lifecycle import watch as watchdog
from toolkit.observe import status as observe_status
from toolkit.paths import REPO_ROOT
from toolkit.protocols import probe as protocols
from toolkit.service.image import image_ref

IMAGE, TEXT, TEXT_B = "watch-demo-image", "watch-demo-text", "watch-demo-text-b"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(scope="module")
def catalog(built: Path, docker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The demo configs under this file's names; their images are tags of the demo images."""
    directory = tmp_path_factory.mktemp("watch-catalog")
    copies = {IMAGE: "demo-image", TEXT: "demo-text", TEXT_B: "demo-text"}
    for new, old in copies.items():
        (directory / f"{new}.yaml").write_text((built / f"{old}.yaml").read_text())
    ours, demo = Catalog.load(str(directory)), Catalog.load(str(built))
    refs = []
    for new, old in copies.items():
        ref = image_ref(ours[new], ours.backend(ours[new]))
        source = image_ref(demo[old], demo.backend(demo[old]))
        docker.images.get(source).tag(ref)
        refs.append(ref)
    yield directory
    for ref in refs:
        docker.images.remove(ref, noprune=True)  # the tag only


def row(name: str) -> dict[str, Any]:
    (found,) = observe_status.status(name)
    return found


def start(name: str, catalog: Path, port: int) -> None:
    result = toolkit("start", name, "--port", str(port), catalog=catalog)
    assert result.exit_code == 0, result.output


def answers(name: str) -> bool:
    service = running.running_service(name)
    assert service is not None
    return protocols.model_listed(service.protocol, service.url, service.model, None)


def test_a_killed_container_comes_back_and_status_says_so(
    docker: Any, engine_api: Engine, catalog: Path, stopped_after: list[Any]
) -> None:
    stopped_after.append((TEXT, catalog))
    start(TEXT, catalog, free_port())
    found = running.container(engine_api, TEXT)
    assert found is not None and row(TEXT)["restarts"] == 0
    # The kernel kills the server (as the OOM killer would); `docker kill` would not do: Docker
    # takes it for a user's stop and leaves the container stopped, as it should.
    os.kill(docker.containers.get(found.id).attrs["State"]["Pid"], signal.SIGKILL)
    wait_until(lambda: row(TEXT)["restarts"] == 1, 60, "Docker's restart")
    wait_until(lambda: answers(TEXT), 120, "the model answering again")
    status = row(TEXT)
    assert (status["state"], status["restarts"], status["watchdog_restarts"]) == ("running", 1, 0)
    assert status["last_failure"] == "the server exited; Docker restarted it"
    assert ISO.match(str(status["last_failure_at"]))
    table = toolkit("status", TEXT, catalog=catalog).stdout
    assert table.splitlines()[0].split()[-4:] == ["RESTARTS", "LOAD", "LAST", "FAILURE"]
    assert re.search(
        rf"\s1\s+-\s+{status['last_failure_at']} the server exited; Docker restarted it$",
        table.splitlines()[1],
    ), table


def test_a_hung_server_is_restarted_by_the_watchdog_within_the_bound(
    docker: Any, engine_api: Engine, catalog: Path, stopped_after: list[Any], tmp_path: Path
) -> None:
    """SIGSTOP freezes the diffusers server (python, PID 1): its port still accepts connections
    but nothing answers, the healthcheck times out, and Docker alone would leave it so."""
    stopped_after.append((IMAGE, catalog))
    start(IMAGE, catalog, free_port())
    log = tmp_path / "watch.log"
    with log.open("w") as sink:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "toolkit", "watch", "--interval", "5", "--backoff", "1"],
            stderr=sink,
            cwd=REPO_ROOT,
        )
    try:
        wait_until(lambda: "watching toolkit services" in log.read_text(), 30, "the watchdog")
        # Docker counts no failing probe in the start period, until one has passed.
        wait_until(lambda: row(IMAGE)["health"] == "healthy", 60, "the first healthy probe")
        found = running.container(engine_api, IMAGE)
        assert found is not None
        bound = watchdog.hang_bound(found, watchdog.Policy(backoff=1))
        assert bound == 3 * (10 + 10) + 10 + 1 + 10  # the rendered healthcheck: 10 s, 10 s, 3
        os.kill(docker.containers.get(found.id).attrs["State"]["Pid"], signal.SIGSTOP)
        # The bound, plus this test's own polling of the record.
        try:
            wait_until(lambda: row(IMAGE)["watchdog_restarts"] == 1, bound + 5, "the restart")
        except TimeoutError:
            health = docker.containers.get(found.id).attrs["State"].get("Health")
            pytest.fail(f"no restart within {bound + 5} s; {health}\n{log.read_text()}")
        wait_until(lambda: answers(IMAGE), 120, "the model answering again")
        text = log.read_text()
        assert re.search(
            rf"WARNING {IMAGE} is unhealthy \(unhealthy: .*\); restarting it in 1 s "
            r"\(restart 1 of at most 5 in a row\)",
            text,
        ), text
        assert f"INFO restarted {IMAGE} (restart 1 in a row, 1 in all)" in text
        status = row(IMAGE)
        assert (status["restarts"], status["state"]) == (1, "running")
        assert str(status["last_failure"]).startswith("unhealthy: ")

        # A stop marker (toolkit stop writes it first) wins over a due restart.
        watchdog.mark_stopped(IMAGE)
        dog = watchdog.Watchdog(engine_api, watchdog.Policy())
        dog.restart(IMAGE, found.id)
        assert row(IMAGE)["watchdog_restarts"] == 1, "no restart after the user's stop"
    finally:
        watcher.send_signal(signal.SIGTERM)
        assert watcher.wait(timeout=30) == 0
    assert log.read_text().rstrip().endswith("INFO watchdog stopped")


def test_a_start_killed_while_waiting_is_taken_over_by_a_rerun(
    docker: Any, engine_api: Engine, catalog: Path, stopped_after: list[Any]
) -> None:
    stopped_after.append((TEXT, catalog))
    port = free_port()
    env = {**os.environ, "TOOLKIT_CATALOG": str(catalog)}
    first = subprocess.Popen(
        [sys.executable, "-m", "toolkit", "start", TEXT, "--port", str(port)],
        env=env,
        stderr=subprocess.DEVNULL,
        cwd=REPO_ROOT,
    )
    wait_until(lambda: running.container(engine_api, TEXT) is not None, 60, "the container")
    first.send_signal(signal.SIGKILL)  # no teardown, no lock release by the process itself
    assert first.wait() == -signal.SIGKILL
    rerun = toolkit("start", TEXT, "--port", str(port), catalog=catalog)
    assert rerun.exit_code == 0, rerun.output
    assert rerun.stdout.splitlines()[0] == (
        f"{TEXT} is already running at http://127.0.0.1:{port} with the same settings."
    )
    assert answers(TEXT), "the rerun returned once the model answered"
    assert len(running.containers(engine_api, TEXT)) == 1


def test_two_starts_on_one_port_exactly_one_wins_and_the_other_refuses(
    catalog: Path, stopped_after: list[Any]
) -> None:
    """Two CPU configs on the same port stand in for two GPU configs on the same GPUs (this
    host has none): the same lock serializes both checks with `compose up`."""
    stopped_after.extend([(TEXT, catalog), (TEXT_B, catalog)])
    port = free_port()
    env = {**os.environ, "TOOLKIT_CATALOG": str(catalog)}
    racers = [
        subprocess.Popen(
            [sys.executable, "-m", "toolkit", "start", name, "--port", str(port), "--no-wait"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )
        for name in (TEXT, TEXT_B)
    ]
    results = [(racer.wait(timeout=120), *racer.communicate()) for racer in racers]
    assert sorted(code for code, _, _ in results) == [0, 1], results
    (loser,) = [stderr for code, _, stderr in results if code == 1]
    assert loser == (
        f"error: port {port} on 127.0.0.1 is already in use; pick another with --port or stop "
        "what holds it.\n"
    )


@pytest.fixture
def alone(request: pytest.FixtureRequest) -> None:
    """Restarting dockerd disturbs every other user of the engine: only with -m dockerd_restart."""
    if "dockerd_restart" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("restarts the shared dockerd; run alone with -m dockerd_restart")


def restart_dockerd() -> None:
    """systemd's docker.service where it runs; else the dockerd process, and start it again the
    way scripts/ensure-engine.sh does."""
    if subprocess.run(["systemctl", "is-active", "--quiet", "docker"], check=False).returncode == 0:
        subprocess.run(["systemctl", "restart", "docker"], check=True)
        return
    pid = int(
        subprocess.run(["pidof", "dockerd"], capture_output=True, text=True).stdout.split()[0]
    )
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), 60, "dockerd exiting")
    subprocess.run([REPO_ROOT / "scripts" / "ensure-engine.sh"], check=True)


@pytest.mark.dockerd_restart
def test_services_come_back_after_dockerd_restarts(
    alone: None, catalog: Path, stopped_after: list[Any]
) -> None:
    stopped_after.append((TEXT, catalog))
    start(TEXT, catalog, free_port())
    restart_dockerd()
    wait_until(lambda: row(TEXT)["state"] == "running", 120, "the container running again")
    wait_until(lambda: answers(TEXT), 180, "the model answering again")
