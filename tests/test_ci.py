"""The CI matrix comes from the catalog, and the workflow only calls what the toolkit has."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import Run
from toolkit.catalog.configs import Catalog
from toolkit.cli.root import COMMANDS
from toolkit.paths import REPO_ROOT

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))


def test_matrix_has_one_entry_per_config(run: Run) -> None:
    entries = json.loads(run("ci-matrix").stdout)
    assert [e["config"] for e in entries] == list(Catalog.load())
    flux = next(e for e in entries if e["config"] == "flux.1-dev")
    assert flux == {
        "config": "flux.1-dev",
        "backend": "diffusers",
        "gpus": 1,
        "version": "0.42.1",
        "image": "toolkit/flux.1-dev:0.42.1",
        "dockerfile": "images/diffusers/flux.1-dev.Dockerfile",
        "context": "images/diffusers",
        "twin": "configs/twins/black-forest-labs--FLUX.1-dev.json",
    }
    demo = next(e for e in entries if e["config"] == "demo-text")
    assert demo["twin"] is None, "a local model has no Hugging Face repository to twin"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def _toolkit_in(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The toolkit of another checkout: its own catalog, images and git history."""
    return subprocess.run(
        [sys.executable, "-c", "from toolkit.__main__ import main; main()", *args],
        cwd=repo,
        env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin", "HOME": str(repo)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_changed_since_lists_only_configs_whose_build_inputs_changed(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(repo)], check=True)
    _git(
        repo,
        "-c",
        "user.email=t@t",
        "-c",
        "user.name=t",
        "commit",
        "--quiet",
        "--allow-empty",
        "-m",
        "base",
    )
    base = _git(repo, "rev-parse", "HEAD")

    server = repo / "images" / "diffusers" / "server.py"
    server.write_text(server.read_text() + "\n# a change to the shared build context\n")
    config = repo / "configs" / "llama3-8b.yaml"
    config.write_text(config.read_text().replace("max-model-len: 8192", "max-model-len: 4096"))
    assert _toolkit_in(repo, "render").returncode == 0
    readme_only = repo / "configs" / "yi1.5-34b.yaml"
    readme_only.write_text(
        readme_only.read_text().replace("description: Yi", "description: The Yi")
    )
    assert _toolkit_in(repo, "render").returncode == 0
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "--quiet", "-am", "edit")

    result = _toolkit_in(repo, "ci-matrix", "--changed-since", base)
    assert result.returncode == 0, result.stderr
    changed = [e["config"] for e in json.loads(result.stdout)]
    assert changed == ["demo-image", "flux.1-dev", "llama3-8b", "yi1.5-34b"], (
        "the diffusers context, llama3-8b's command and yi's label changed; nothing else"
    )
    assert json.loads(_toolkit_in(repo, "ci-matrix", "--changed-since", "HEAD").stdout) == []


def test_unknown_revision_is_a_usage_error(run: Run) -> None:
    result = run("ci-matrix", "--changed-since", "no-such-ref")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: git revision 'no-such-ref' is not known here; fetch it "
        "(git fetch, or a deeper clone) or pass another --changed-since.\n"
    )


def test_workflows_parse_pin_actions_and_call_only_toolkit_commands() -> None:
    assert WORKFLOWS, "the image workflow exists"
    commands = set(COMMANDS)
    for path in WORKFLOWS:
        text = path.read_text()
        workflow = yaml.safe_load(text)
        assert workflow["permissions"] == {"contents": "read"}, "least privilege by default"
        for job in workflow["jobs"].values():
            for step in job["steps"]:
                if "uses" in step:
                    assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), (
                        f"{step['uses']} is not pinned by commit"
                    )
        called = set(re.findall(r"\btoolkit ([a-z][a-z-]*)", text))
        assert called, "the workflow drives the toolkit"
        assert called <= commands, f"unknown toolkit commands: {called - commands}"
        targets = set(re.findall(r"\bmake ([a-z][a-z-]*)", text))
        makefile = (REPO_ROOT / "Makefile").read_text()
        assert all(re.search(rf"^{t}:", makefile, re.MULTILINE) for t in targets)
