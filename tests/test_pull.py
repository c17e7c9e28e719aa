"""`toolkit pull` and start's download step, through the real huggingface_hub client.

The Hub is out of reach here, so a real Hub mirror stands in for it: olah (PyPI), offline,
serving local git repos (tests/hubmirror.py), behind a proxy that slows or stalls the bytes.
The in-container script (toolkit/lifecycle/hubpull.py) runs as a local process with this venv's
huggingface_hub; tests/engine/test_pull.py runs it in the real container.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Run, builtin_text
from tests.hubmirror import Throttle, commit_files, olah_mirror
from toolkit.catalog.configs import Catalog, CatalogError, load_config
from toolkit.lifecycle import pull

REPO = "pull-test/tiny"
WEIGHTS = os.urandom(3 << 20)  # 3 MiB, stored as an LFS object
FILES = {"config.json": b'{"model_type": "llama"}\n', "model.safetensors": WEIGHTS}


class ProcessJob:
    """The pull script as a local process (the container launcher's stand-in in these tests)."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def lines(self) -> Iterator[str]:
        assert self.process.stdout is not None
        yield from self.process.stdout

    def finish(self) -> tuple[int, str]:
        _, errors = self.process.communicate(timeout=60)
        return self.process.returncode, errors

    def stop(self) -> None:
        self.process.kill()
        self.process.communicate(timeout=60)


def launch(command: list[str], env: dict[str, str], token: Path | None) -> ProcessJob:
    if token is not None:
        env = {**env, "HF_TOKEN_PATH": str(token)}
    return ProcessJob(command, env)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Throttle]:
    with olah_mirror(tmp_path / "hub") as (mirrors, proxy):
        commit_files(mirrors / "models" / REPO, FILES, lfs={"model.safetensors"})
        yield proxy


def plan_for(tmp_path: Path, proxy: Throttle, revision: str = "main") -> pull.Step:
    env = {
        "HF_HOME": str(tmp_path / "cache" / "huggingface"),
        "HF_ENDPOINT": proxy.url,
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
    lock = str(tmp_path / "cache" / "locks" / "pull-tiny.json")
    return pull.Step([sys.executable, str(pull.SCRIPT)], REPO, revision, lock, env)


def blobs(step: pull.Step) -> Path:
    return Path(step.env["HF_HOME"]) / "hub" / "models--pull-test--tiny" / "blobs"


def test_pull_fetches_the_revision_through_a_real_hub_mirror_and_locks_each_file(
    tmp_path: Path, hub: Throttle
) -> None:
    step = plan_for(tmp_path, hub)
    lines: list[str] = []
    pulled = pull.run("pull-tiny", step, launch, None, lambda _, line: lines.append(line))
    head = subprocess.run(
        ["git", "-C", str(tmp_path / "hub/mirrors/models" / REPO), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert (pulled.commit, pulled.files, pulled.total) == (head, 2, sum(map(len, FILES.values())))
    lock = json.loads(Path(step.lock).read_text())
    assert (lock["repo"], lock["revision"], lock["commit"]) == (REPO, "main", head)
    assert {path: entry["sha256"] for path, entry in lock["files"].items()} == {
        path: hashlib.sha256(data).hexdigest() for path, data in FILES.items()
    }
    assert any(line.startswith(f"downloading {REPO} [") for line in lines)
    assert lines[-1] == "checking the SHA-256 of 2 file(s)"
    # The server's own client finds the snapshot offline, by the branch name.
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from huggingface_hub import snapshot_download; print(snapshot_download({REPO!r}))",
        ],
        env={**os.environ, "HF_HOME": step.env["HF_HOME"], "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    snapshot = Path(found.stdout.strip())
    assert snapshot.name == head
    assert (snapshot / "model.safetensors").read_bytes() == WEIGHTS
    assert pull.check(step, launch) == ("complete", "")


def test_an_interrupted_download_resumes_where_it_stopped(tmp_path: Path, hub: Throttle) -> None:
    step = plan_for(tmp_path, hub)
    hub.rate = 1 << 20  # 1 MiB/s: the 3 MiB file takes about 3 s

    def interrupt_halfway(_: float, line: str) -> None:
        if "MiB of" in line and not line.split("] ")[1].startswith("0."):
            raise KeyboardInterrupt

    with pytest.raises(pull.ToolkitError) as stopped:
        pull.run("pull-tiny", step, launch, None, interrupt_halfway)
    assert str(stopped.value) == (
        f"interrupted; the download of {REPO} stopped and resumes where it left off on the "
        "next 'toolkit pull pull-tiny' or 'toolkit start pull-tiny'."
    )
    assert stopped.value.exit_code == 130
    (partial,) = blobs(step).glob("*.incomplete")
    kept = partial.stat().st_size
    assert 0 < kept < len(WEIGHTS)
    hub.rate = 0
    pulled = pull.run("pull-tiny", step, launch, None, lambda *_: None)
    assert pulled.total == sum(map(len, FILES.values()))
    # The client asks for the rest only. olah answers a mirrored file's Range request with
    # the whole file, which huggingface_hub detects and writes from the start; the Hub's
    # CDN answers 206 with the rest. Either way the blob ends whole and matches the lock.
    assert f"bytes={kept}-" in hub.ranges()
    assert (blobs(step) / hashlib.sha256(WEIGHTS).hexdigest()).read_bytes() == WEIGHTS
    assert pull.check(step, launch) == ("complete", "")


def test_a_stalled_download_stops_after_the_stall_time_and_resumes_later(
    tmp_path: Path, hub: Throttle
) -> None:
    step = plan_for(tmp_path, hub)
    hub.rate = 1 << 20

    def stall_once_moving(_: float, line: str) -> None:
        if "MiB of" in line:
            hub.stalled.set()

    with pytest.raises(pull.PullError) as stalled:
        pull.run("pull-tiny", step, launch, None, stall_once_moving, stall_minutes=0.05)
    message = str(stalled.value)
    assert message.startswith(f"the download of {REPO} stalled: no bytes for 0.05 minute(s) at ")
    assert message.endswith(
        "of 3.0 MiB; check the network (or HF_ENDPOINT), then run 'toolkit pull pull-tiny' "
        "again: it resumes where it stopped."
    )
    hub.stalled.clear()
    hub.rate = 0
    assert pull.run("pull-tiny", step, launch, None, lambda *_: None).files == 2


def test_check_says_what_no_longer_matches_the_lock(tmp_path: Path, hub: Throttle) -> None:
    step = plan_for(tmp_path, hub)
    assert pull.check(step, launch) == ("missing", "no lock")
    pulled = pull.run("pull-tiny", step, launch, None, lambda *_: None)
    snapshot = blobs(step).parent / "snapshots" / pulled.commit
    config = snapshot / "config.json"
    kept = config.read_bytes()
    config.unlink()
    config.write_bytes(kept.replace(b"llama", b"LLAMA"))
    assert pull.check(step, launch) == (
        "mismatch",
        "config.json differs from its recorded SHA-256",
    )
    config.write_bytes(kept)
    assert pull.check(step, launch) == ("complete", "")
    ref = blobs(step).parent / "refs" / "main"
    ref.write_text("0" * 40)
    assert pull.check(step, launch) == (
        "mismatch",
        f"its main now points at 000000000000, not {pulled.commit[:12]}",
    )
    ref.write_text(pulled.commit)
    (snapshot / "model.safetensors").unlink()
    assert pull.check(step, launch) == ("mismatch", "model.safetensors is missing")


def test_a_commit_sha_revision_pulls_that_commit(tmp_path: Path, hub: Throttle) -> None:
    first = pull.run("pull-tiny", plan_for(tmp_path, hub), launch, None, lambda *_: None)
    mirrors = tmp_path / "hub" / "mirrors" / "models" / REPO
    commit_files(mirrors, {"config.json": b'{"model_type": "mistral"}\n'}, lfs=set())
    pinned = plan_for(tmp_path, hub, revision=first.commit)
    again = pull.run("pull-tiny", pinned, launch, None, lambda *_: None)
    assert again.commit == first.commit
    assert pull.check(pinned, launch) == ("complete", "")


def test_the_token_file_reaches_the_hub_as_a_bearer_token(tmp_path: Path, hub: Throttle) -> None:
    token = tmp_path / "token"
    token.write_text("hf_pulltesttoken\n")
    pull.run("pull-tiny", plan_for(tmp_path, hub), launch, token, lambda *_: None)
    heads = b"".join(hub.requests).decode("latin-1").lower()
    assert "authorization: bearer hf_pulltesttoken" in heads


def test_an_unknown_repo_fails_in_one_sentence(tmp_path: Path, hub: Throttle) -> None:
    step = plan_for(tmp_path, hub)
    missing = pull.Step(step.command, "pull-test/nope", "main", step.lock, step.env)
    with pytest.raises(pull.PullError) as failed:
        pull.run("pull-tiny", missing, launch, None, lambda *_: None)
    assert str(failed.value) == (
        "pulling pull-test/nope for pull-tiny failed: pull-test/nope at main was not found "
        "(or is private and needs a token)."
    )


def test_the_progress_line_shows_bytes_rate_and_eta() -> None:
    meter = pull.Meter(total=1000 << 20, now=0.0)
    meter.update(0, 0.0)
    meter.update(100 << 20, 10.0)
    assert meter.line("org/model") == (
        "downloading org/model [##..................] 100.0 MiB of 1000.0 MiB (10%), "
        "10.0 MiB/s, ETA 1m30s"
    )
    assert meter.moved_at == 10.0
    meter.update(100 << 20, 70.0)
    assert meter.moved_at == 10.0


def test_the_pull_step_comes_from_the_backend_descriptor(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.internal:8080")
    step = pull.step(catalog, catalog["llama3.1-405b_8"])
    assert isinstance(step, pull.Step)
    assert step.command[:2] == ["python3", "-c"]
    assert step.command[2] == pull.SCRIPT.read_text()
    assert (step.repo, step.revision) == ("meta-llama/Llama-3.1-405B-Instruct-FP8", "main")
    assert step.lock == "/cache/locks/llama3.1-405b_8.json"
    assert step.env["HF_ENDPOINT"] == "http://hub.internal:8080"
    assert step.env["HF_HOME"] == "/cache/huggingface"


def test_pull_says_when_there_is_nothing_to_pull(run: Run) -> None:
    local = run("pull", "demo-text")
    assert (local.exit_code, local.output) == (
        0,
        "demo-text serves the local model directory .demo/models/tiny-llama; "
        "there is nothing to pull.\n",
    )
    ollama = run("pull", "minicpm-v2.6")
    assert (ollama.exit_code, ollama.output) == (
        0,
        "minicpm-v2.6's backend (ollama) fetches its ollama source itself when it starts; "
        "there is nothing to pull beforehand.\n",
    )


def test_pull_refuses_a_gated_model_without_a_token(run: Run) -> None:
    result = run("pull", "llama3.1-405b_8")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: Llama-3.1-405B is gated and no Hugging Face token was "
        "found; put your token in "
        f"{Path.home() / '.cache/huggingface/token'} (huggingface-cli login), or set "
        "HF_TOKEN_FILE or HF_TOKEN.\n"
    )


@pytest.mark.parametrize(
    ("revision", "problem"),
    [
        (
            "abc1234",
            "'abc1234' looks like a shortened commit SHA; give all 40 hex digits, "
            "or a branch or tag name",
        ),
        (
            "main..dev",
            "'main..dev' is neither a branch or tag name nor a 40-digit commit SHA; "
            "use e.g. main, v1.0 or a full SHA",
        ),
        (
            "-x",
            "'-x' is neither a branch or tag name nor a 40-digit commit SHA; "
            "use e.g. main, v1.0 or a full SHA",
        ),
    ],
)
def test_the_catalog_refuses_a_revision_that_is_no_ref_nor_full_sha(
    tmp_path: Path, revision: str, problem: str
) -> None:
    path = tmp_path / "pull-rev.yaml"
    path.write_text(builtin_text("llama3-8b").replace("revision: main", f"revision: {revision}"))
    with pytest.raises(CatalogError) as refused:
        load_config(path, Catalog.load().backends)
    assert str(refused.value) == f"{path}: field 'source.revision': {problem}."


@pytest.mark.parametrize("revision", ["a" * 40, "v1.0", "refs/pr/12", "main"])
def test_the_catalog_takes_a_full_sha_or_a_ref_name(tmp_path: Path, revision: str) -> None:
    path = tmp_path / "pull-rev.yaml"
    path.write_text(builtin_text("llama3-8b").replace("revision: main", f"revision: {revision}"))
    assert load_config(path, Catalog.load().backends).source.revision == revision
