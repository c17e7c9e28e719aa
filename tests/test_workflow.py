"""The workflow check of `make lint` (scripts/lint-workflows.sh) catches what it promises to.

Each test runs the same script `make lint` runs, with the real check-jsonschema and zizmor from
the dev extras, on the real workflow or on a copy with one known fault written into tmp_path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from toolkit.paths import REPO_ROOT

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "images.yml"
SCRIPT = REPO_ROOT / "scripts" / "lint-workflows.sh"
CHECKOUT = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683"
KEEPS_NO_CREDENTIALS = "persist-credentials: false"
FETCH_DEPTH = "fetch-depth: 0  # ci-matrix diffs against the base commit\n          "


# The tools of this Python's environment come first, as `make lint` puts .venv/bin first.
PATH = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def tool(name: str) -> str:
    found = shutil.which(name, path=PATH)
    assert found, f"{name} is missing: run `make setup`"
    return found


def lint(*files: Path) -> subprocess.CompletedProcess[str]:
    """scripts/lint-workflows.sh, as `make lint` runs it."""
    tool("check-jsonschema")
    tool("zizmor")
    return subprocess.run(
        [str(SCRIPT), *map(str, files)],
        env={**os.environ, "PATH": PATH},
        capture_output=True,
        text=True,
        check=False,
    )


def mutated(tmp_path: Path, old: str, new: str) -> Path:
    text = WORKFLOW.read_text()
    assert old in text, f"the workflow no longer contains {old!r}: update this test"
    copy = tmp_path / ".github" / "workflows" / "images.yml"
    copy.parent.mkdir(parents=True)
    copy.write_text(text.replace(old, new))
    return copy


def test_the_workflow_passes_its_own_check() -> None:
    result = lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


@pytest.mark.parametrize(
    ("old", "new", "finding"),
    [
        pytest.param(CHECKOUT, "actions/checkout@v4", "unpinned-uses", id="unpinned-action"),
        pytest.param(
            '"$TOOLKIT" build "$CONFIG"',
            '"$TOOLKIT" build "${{ matrix.config }}"',
            "template-injection",
            id="template-expansion-in-run",
        ),
        pytest.param(
            FETCH_DEPTH + KEEPS_NO_CREDENTIALS,
            FETCH_DEPTH.rstrip(),
            "artipacked",
            id="checkout-persists-credentials",
        ),
        pytest.param(
            "id-token: write  # an OIDC token",
            "id-token: write\n      # an OIDC token",
            "undocumented-permissions",
            id="permission-without-comment",
        ),
    ],
)
def test_a_workflow_fault_fails_the_check(tmp_path: Path, old: str, new: str, finding: str) -> None:
    result = lint(mutated(tmp_path, old, new))
    assert result.returncode != 0
    assert f"[{finding}]" in result.stdout, result.stdout + result.stderr


def test_a_workflow_outside_githubs_schema_fails_the_check(tmp_path: Path) -> None:
    result = lint(mutated(tmp_path, "runs-on: ubuntu-24.04", "runs_on: ubuntu-24.04"))
    assert result.returncode != 0
    assert "Schema validation errors were encountered." in result.stdout


def test_a_checkout_that_asks_to_persist_credentials_fails_the_check(tmp_path: Path) -> None:
    """zizmor trusts an explicit `persist-credentials: true`; this project's check does not."""
    copy = mutated(tmp_path, KEEPS_NO_CREDENTIALS, "persist-credentials: true")
    lines = [
        n
        for n, line in enumerate(copy.read_text().splitlines(), 1)
        if "persist-credentials: true" in line
    ]
    result = lint(copy)
    assert result.returncode == 1
    assert len(lines) == 2, "both checkouts"
    assert result.stderr == "".join(
        f"{copy}:{n}: a checkout keeps the job's token in .git/config "
        "(persist-credentials: true); set it to false.\n"
        for n in lines
    )


def test_an_ignore_comment_cannot_silence_a_default_finding(tmp_path: Path) -> None:
    """Only pedantic findings may be explained away inline; the default ones must be fixed."""
    copy = mutated(
        tmp_path,
        f"- uses: {CHECKOUT}  # v4.2.2\n        with:\n"
        f"          {FETCH_DEPTH}{KEEPS_NO_CREDENTIALS}",
        f"- uses: {CHECKOUT}  # zizmor: ignore[artipacked] a test says why\n"
        f"        with:\n          {FETCH_DEPTH.rstrip()}",
    )
    result = lint(copy)
    assert result.returncode != 0
    assert "[artipacked]" in result.stdout, result.stdout + result.stderr
    pedantic = subprocess.run(
        [
            tool("zizmor"),
            "--quiet",
            "--offline",
            "--color",
            "never",
            "--persona",
            "pedantic",
            str(copy),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "1 ignored" in pedantic.stdout, "the comment itself is one zizmor honours"


def test_the_workflow_runs_what_ci_runs() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    assert {job["runs-on"] for job in jobs.values()} == {"ubuntu-24.04"}
    runs = [step.get("run", "") for step in jobs["check"]["steps"]]
    assert any(run.endswith("bash .ci/run") for run in runs), "the check job runs .ci/run itself"
    assert any(run.endswith("make demo") for run in runs)
    ci_run = (REPO_ROOT / ".ci" / "run").read_text()
    assert "make lint\nmake test\n" in ci_run, ".ci/run still runs the lint and every test"


def test_only_the_job_that_pushes_may_write_or_sign() -> None:
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    for name, job in jobs.items():
        pushes = any('"$TOOLKIT" push' in step.get("run", "") for step in job["steps"])
        writes = {k for k, v in job.get("permissions", {}).items() if v == "write"}
        assert writes == ({"packages", "id-token", "attestations"} if pushes else set()), name
