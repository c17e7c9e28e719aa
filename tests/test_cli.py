"""The CLI's promises: fast paths import nothing heavy, every command is documented."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import Run, builtin_text
from toolkit.cli import cli
from toolkit.paths import REPO_ROOT

HEAVY = ("docker", "httpx", "requests", "jinja2", "openai", "torch")
CHECK_IMPORTS = """
import sys
from toolkit.cli import cli
try:
    cli.main(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
print("HEAVY:" + ",".join(m for m in {heavy!r} if m in sys.modules))
"""


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["list", "--json"]])
def test_fast_commands_import_no_engine_or_http_client(argv: list[str]) -> None:
    code = CHECK_IMPORTS.format(heavy=HEAVY)
    result = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines()[-1] == "HEAVY:"


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_a_summary_examples_and_a_readme_mention(run: Run, name: str) -> None:
    command = cli.commands[name]
    assert command.help and command.get_short_help_str(200).endswith(".")
    assert "Examples:" in command.help
    result = run(name, "--help")
    assert result.exit_code == 0
    assert f"toolkit {name}" in (REPO_ROOT / "README.md").read_text()


def test_render_check_stays_light() -> None:
    """render needs Jinja but never the engine or an HTTP client."""
    code = CHECK_IMPORTS.format(heavy=("docker", "httpx", "openai", "torch"))
    result = subprocess.run(
        [sys.executable, "-c", code, "render", "--check"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.splitlines()[-1] == "HEAVY:"


def _toolkit(tmp_path, *args: str, catalog: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "TOOLKIT_CATALOG": catalog,
    }
    return subprocess.run(
        [sys.executable, "-m", "toolkit", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


READ_ONLY = [
    ["list"],
    ["list", "--json"],
    ["show", "llama3-70b_4"],
    ["show", "flux.1-dev", "--json"],
    ["plan", "llama3.1-405b_8"],
    ["plan", "demo-image", "--json"],
]


@pytest.mark.parametrize("args", READ_ONLY)
def test_cached_answers_print_what_the_full_cli_prints(tmp_path, run: Run, args: list[str]) -> None:
    cold = _toolkit(tmp_path, *args)
    assert list((tmp_path / "cache" / "model-serving-toolkit").glob("catalog-*.json"))
    warm = _toolkit(tmp_path, *args)
    full = run(*args)
    assert cold.stdout == warm.stdout == full.stdout
    assert cold.returncode == warm.returncode == full.exit_code


def test_list_cache_notices_an_edited_config(tmp_path, user_catalog) -> None:
    directory = user_catalog("mine.yaml", builtin_text("llama3-8b"))
    assert "mine " in _toolkit(tmp_path, "list", catalog=str(directory)).stdout
    (directory / "mine.yaml").write_text(builtin_text("llama3-8b").replace("Llama3-8B", "Edited"))
    os.utime(directory / "mine.yaml", ns=(1, 1))
    assert "Edited" in _toolkit(tmp_path, "list", catalog=str(directory)).stdout
