"""The CLI's promises: fast paths import nothing heavy, every command is documented."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import Run
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
