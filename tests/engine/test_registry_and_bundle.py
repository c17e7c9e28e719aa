"""Images to a real registry and back, and the air-gapped bundle round trip."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import httpx
import pytest

from tests.engine.conftest import leftovers, toolkit, with_local_model
from tests.servers import free_port, wait_until
from toolkit.paths import REPO_ROOT

IMAGE = "toolkit/demo-image:0.42.1"


@contextlib.contextmanager
def registry(tmp_path: Path, user: str | None = None, password: str = "") -> Iterator[str]:
    """Debian's docker-registry on loopback, own storage; basic auth when a user is given."""
    port = free_port()
    config = {
        "version": 0.1,
        "log": {"level": "error"},
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "storage")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if user:
        htpasswd = tmp_path / "htpasswd"
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
        htpasswd.write_text(f"{user}:{hashed}\n")
        config["auth"] = {"htpasswd": {"realm": "toolkit-test", "path": str(htpasswd)}}
    config_file = tmp_path / "registry.yml"
    config_file.write_text(json.dumps(config))
    process = subprocess.Popen(
        ["docker-registry", "serve", str(config_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    host = f"127.0.0.1:{port}"
    try:
        wait_until(
            lambda: httpx.get(f"http://{host}/v2/").status_code in (200, 401),
            30,
            "the registry answering",
        )
        yield host
    finally:
        process.terminate()
        process.wait(timeout=10)


def _remove(docker, reference: str) -> None:
    with contextlib.suppress(Exception):
        docker.images.remove(reference, force=True)


def test_push_and_pull_back_with_identical_digests(docker, built: Path, tmp_path: Path) -> None:
    with registry(tmp_path) as host:
        result = toolkit(
            "push",
            "demo-image",
            "--registry",
            host,
            "--namespace",
            "test",
            "--tag",
            "ci",
            catalog=built,
        )
        assert result.exit_code == 0, result.output
        pushed = dict(line.split("@") for line in result.stdout.splitlines())
        tags = [ref.rsplit(":", 1)[1] for ref in pushed]
        assert tags[0] == "0.42.1" and tags[1].startswith("sha-") and len(tags[1]) == 16
        assert tags[2].isdigit() and len(tags[2]) == 8 and tags[3] == "ci"
        assert "latest" not in tags, "latest moves only on request"
        assert len(set(pushed.values())) == 1, "every tag names the same manifest"
        subjects = subprocess.run(
            [str(REPO_ROOT / "scripts" / "attestation-subjects.sh")],
            input=result.stdout,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        digest = next(iter(pushed.values())).removeprefix("sha256:")
        assert subjects == f"{digest}  {host}/test/demo-image\n", "CI attests this digest"

        reference = f"{host}/test/demo-image:0.42.1"
        for ref in pushed:
            _remove(docker, ref)
        pulled = docker.images.pull(f"{host}/test/demo-image", tag="0.42.1")
        pulled.tag("pulled/demo-image", "back")
        again = docker.images.get("pulled/demo-image:back")
        assert f"{host}/test/demo-image@{pushed[reference]}" in again.attrs["RepoDigests"]
        assert again.id == docker.images.get(IMAGE).id, "the same image came back"
        _remove(docker, "pulled/demo-image:back")
        _remove(docker, reference)


def test_wrong_credentials_are_one_sentence_and_push_nothing(
    docker, built: Path, tmp_path: Path
) -> None:
    with registry(tmp_path, user="ci", password="right-password") as host:
        result = toolkit(
            "push",
            "demo-image",
            "--registry",
            host,
            "--namespace",
            "test",
            "--username",
            "ci",
            "--password-stdin",
            catalog=built,
            input="wrong-password\n",
        )
        assert result.exit_code == 1
        assert result.stderr == (
            f"error: registry {host} refused the credentials for "
            f"{host}/test/demo-image; log in with 'docker login {host}' "
            "or pass --username and --password-stdin.\n"
        )
        assert "wrong-password" not in result.output
        listing = httpx.get(
            f"http://{host}/v2/test/demo-image/tags/list", auth=("ci", "right-password")
        )
        assert listing.status_code == 404, "no tag was left half-pushed"
    for tag in ("0.42.1",):
        _remove(docker, f"{host}/test/demo-image:{tag}")


def test_unknown_registry_is_one_sentence(docker, built: Path) -> None:
    host = f"127.0.0.1:{free_port()}"
    result = toolkit("push", "demo-image", "--registry", host, catalog=built)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: registry {host} is not reachable (")
    assert result.stderr.endswith("check its address and that it serves the registry API.\n")


@pytest.fixture
def bundle(docker, built: Path, tmp_path: Path, tiny_models: Path) -> Path:
    path = tmp_path / "demo.bundle"
    result = toolkit(
        "export",
        "demo-image",
        "-o",
        str(path),
        "--with-model",
        str(tiny_models / "tiny-diffusion"),
        catalog=built,
    )
    assert result.exit_code == 0, result.output
    return path


def test_air_gapped_round_trip_and_a_corrupted_bundle(
    docker, built: Path, bundle: Path, tmp_path: Path, stopped_after
) -> None:
    image_id = docker.images.get(IMAGE).id
    corrupt = tmp_path / "corrupt.bundle"
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0x01
    corrupt.write_bytes(bytes(data))
    docker.images.remove(image_id, force=True)

    refused = toolkit("import", str(corrupt))
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"error: bundle {corrupt} is corrupt: image.tar does not match its "
        "SHA-256 in the manifest; nothing was loaded.\n"
    )
    assert not docker.images.list(name="toolkit/demo-image"), "nothing was loaded"

    model_dir = tmp_path / "model"
    loaded = toolkit("import", str(bundle), "--model-dir", str(model_dir))
    assert loaded.exit_code == 0, loaded.output
    assert docker.images.get(IMAGE).id == image_id
    catalog = with_local_model(built, "demo-image", model_dir, tmp_path / "catalog")
    stopped_after.append(("demo-image", catalog))
    port = str(free_port())
    assert toolkit("start", "demo-image", "--port", port, catalog=catalog).exit_code == 0
    probe = toolkit("probe", "demo-image", catalog=catalog)
    assert probe.exit_code == 0, probe.output
    toolkit("stop", "demo-image", catalog=catalog)
    assert leftovers(docker, "toolkit-demo-image") == []
