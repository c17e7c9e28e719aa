"""The toolkit installed from a wheel, outside the checkout, carries what it needs.

The wheel is built from this repository, installed into a fresh virtual environment (its
dependencies come from the test run's own environment, so nothing is downloaded twice), and used
from a directory that is not the checkout: the catalog, the templates and the build contexts must
all come from the installed package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from toolkit.paths import REPO_ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("installed")
    wheels = root / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), "."],
        cwd=REPO_ROOT,
        check=True,
    )
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=True)
    wheel = next(wheels.glob("model_serving_toolkit-*.whl"))
    subprocess.run(
        [env_dir / "bin/python", "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
    )
    return env_dir


def toolkit(env_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The dependencies from this test run's environment; the toolkit from the fresh one.
    deps = sysconfig.get_paths()["purelib"]
    env = {**os.environ, "PYTHONPATH": deps, "XDG_CACHE_HOME": str(cwd / "cache")}
    env.pop("TOOLKIT_CATALOG", None)
    return subprocess.run(
        [env_dir / "bin/toolkit", *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_an_installed_toolkit_lists_shows_renders_and_plans(
    installed: Path, tmp_path: Path
) -> None:
    located = subprocess.run(
        [installed / "bin/python", "-c", "import toolkit, sys; print(toolkit.__file__)"],
        cwd=tmp_path,
        env={"PYTHONPATH": sysconfig.get_paths()["purelib"]},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert located.startswith(str(installed)), "the installed copy, not the checkout"

    listed = toolkit(installed, tmp_path, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "llama3-70b_4" in {row["name"] for row in json.loads(listed.stdout)}

    shown = toolkit(installed, tmp_path, "show", "llama3-70b_4", "--json")
    assert json.loads(shown.stdout)["image"].startswith("toolkit/llama3-70b_4:")

    out = tmp_path / "rendered"
    rendered = toolkit(installed, tmp_path, "render", "-o", str(out))
    assert rendered.returncode == 0, rendered.stderr
    compose = (out / "compose" / "llama3-70b_4.yaml").read_text()
    assert compose == (REPO_ROOT / "compose" / "llama3-70b_4.yaml").read_text()
    assert (out / "images" / "vllm" / "llama3-70b_4.Dockerfile").is_file()

    planned = toolkit(installed, tmp_path, "plan", "llama3-70b_4", "--json")
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["fits"] is True

    model = tmp_path / "Qwen2.5-7B-Instruct"
    model.mkdir()
    published = REPO_ROOT / "tests" / "fixtures" / "add" / "Qwen--Qwen2.5-7B-Instruct.json"
    (model / "config.json").write_text(published.read_text())
    added = toolkit(installed, tmp_path, "add", str(model), "--catalog", str(tmp_path / "mine"))
    assert added.returncode == 0, added.stderr  # vLLM's architectures come with the wheel
    assert (tmp_path / "mine" / "qwen2.5-7b-instruct.yaml").is_file()
    assert " check qwen2.5-7b-instruct && " in added.stdout.splitlines()[-1]
    carried = subprocess.run(
        [installed / "bin/python", "-c", "from toolkit.lifecycle import check; from toolkit.paths "
         "import data_root; print((data_root() / check.SCRIPT).is_file())"],
        cwd=tmp_path, env={"PYTHONPATH": sysconfig.get_paths()["purelib"]},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert carried.stdout.strip() == "True", "toolkit check's script comes with the wheel"


def test_the_wheel_declares_what_add_and_plan_model_need(installed: Path) -> None:
    requires = subprocess.run(
        [installed / "bin/python", "-m", "pip", "show", "model-serving-toolkit"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "huggingface_hub" in requires or "huggingface-hub" in requires
