"""The CLI's promises: fast paths import nothing heavy, every command is documented."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pytest

from tests.conftest import Run, builtin_text
from toolkit.cli.root import COMMANDS, cli
from toolkit.paths import REPO_ROOT

HEAVY = ("docker", "httpx", "requests", "jinja2", "openai", "torch")
CHECK_IMPORTS = """
import sys
from toolkit.cli.root import cli
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


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_a_summary_examples_and_a_readme_mention(run: Run, name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
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


def test_top_level_help_lists_commands_in_workflow_order_untruncated(run: Run) -> None:
    listing = run("--help").stdout.split("Commands:\n")[1].splitlines()
    names = [line.split()[0] for line in listing if line.strip()]
    assert names == [
        "list", "show", "plan", "add", "build", "check", "push", "pull", "start", "probe", "bench",
        "status", "logs", "stop", "watch", "metrics", "render", "ci-matrix", "export", "import",
        "version",
    ]  # fmt: skip
    assert not any(line.rstrip().endswith("...") for line in listing), "no cut summaries"


UNKNOWN = [
    ["show", "nope"],
    ["plan", "nope"],
    ["build", "nope"],
    ["start", "nope"],
    ["probe", "nope"],
    ["bench", "nope"],
    ["status", "nope"],
    ["logs", "nope"],
    ["stop", "nope"],
    ["export", "nope", "-o", "x.bundle"],
    ["render", "nope"],
]


@pytest.mark.parametrize("args", UNKNOWN, ids=lambda a: a[0])
def test_an_unknown_name_is_a_usage_error_for_every_command(run: Run, args: list[str]) -> None:
    result = run(*args)
    assert (result.exit_code, result.stderr) == (
        2,
        "error: unknown config 'nope'; Run 'toolkit list' to see every config.\n",
    )


def test_usage_errors_are_one_line_and_exit_2(run: Run) -> None:
    cases = {
        ("start", "demo-text", "--gpus", "abc"): "error: Invalid value for '--gpus': 'abc' is "
        "not a list of GPU ids; write them like 0 or 4,5,6,7 (see 'cli start --help').\n",
        ("start", "demo-text", "--bind", "notanip"): "error: Invalid value for '--bind': "
        "'notanip' is not an IPv4 address; use 127.0.0.1 (default) or 0.0.0.0 "
        "(see 'cli start --help').\n",
        (
            "probe",
            "--url",
            "http://127.0.0.1:1",
            "--protocol",
            "openai-image",
            "--model",
            "M",
            "--size",
            "big",
        ): "error: Invalid value for '--size': 'big' is not an image size; "
        "write it like 512x512 (see 'cli probe --help').\n",
        ("logs", "demo-text", "--tail", "-5"): "error: Invalid value for '--tail': -5 is not "
        "in the range x>=0 (see 'cli logs --help').\n",
        ("list", "--nope"): "error: No such option '--nope' (see 'cli list --help').\n",
    }
    for args, message in cases.items():
        result = run(*args)
        assert (result.exit_code, result.stderr) == (2, message), args


def test_show_says_a_user_file_replaces_the_built_in_config(tmp_path, run: Run) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "llama3-8b.yaml").write_text(builtin_text("llama3-8b"))
    (catalog / "mine.yaml").write_text(builtin_text("llama3-8b"))
    for args in (["show", "llama3-8b"], ["show", "llama3-8b", "--json"]):
        cold = _toolkit(tmp_path, *args, catalog=str(catalog))
        warm = _toolkit(tmp_path, *args, catalog=str(catalog))
        assert cold.stdout == warm.stdout == run("--catalog", str(catalog), *args).stdout
    shown = json.loads(warm.stdout)
    assert (shown["file"], shown["overrides"]) == (
        str(catalog / "llama3-8b.yaml"),
        "configs/llama3-8b.yaml",
    )
    added = json.loads(run("--catalog", str(catalog), "show", "mine", "--json").stdout)
    assert "overrides" not in added


def test_a_catalog_entry_that_is_no_file_misses_the_cache(tmp_path) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    assert _toolkit(tmp_path, "list", catalog=str(catalog)).returncode == 0
    (catalog / "sub.yaml").mkdir()
    listed = _toolkit(tmp_path, "list", catalog=str(catalog))
    assert (listed.returncode, listed.stderr) == (
        2,
        f"error: {catalog / 'sub.yaml'}: a directory, not a config file; rename it or move it "
        "out of the catalog.\n",
    )
