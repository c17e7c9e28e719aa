"""The `toolkit` command line: a root that maps command names to the modules that hold them.

Command modules only parse options, call the library and print; each is imported when its command
runs (or when `--help` lists them), and heavy modules load inside the commands that need them, so
`toolkit --help`, `list` and `render` start fast and work on a machine without Docker. Every error
leaves through `ToolkitGroup.main` as one line and an exit code: 2 for usage errors and unknown
names, 1 for a negative result or a failed step, 130 for an interrupt.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, NoReturn

import click

from toolkit.cli.common import State
from toolkit.errors import ToolkitError
from toolkit.paths import CATALOG_ENV, user_catalog

INTERRUPTED = 130
# Every command, in workflow order: its name, and the module and attribute that hold it.
COMMANDS = {
    "list": "catalog:list_",
    "show": "catalog:show",
    "plan": "catalog:plan",
    "add": "add:add",
    "build": "release:build",
    "check": "lifecycle:check",
    "push": "release:push",
    "pull": "lifecycle:pull",
    "start": "lifecycle:start",
    "probe": "observe:probe",
    "bench": "bench:bench",
    "status": "lifecycle:status",
    "logs": "lifecycle:logs",
    "stop": "lifecycle:stop",
    "watch": "lifecycle:watch",
    "metrics": "observe:metrics",
    "render": "render:render",
    "ci-matrix": "render:ci_matrix",
    "export": "release:export_",
    "import": "release:import_",
    "version": "observe:version",
}


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class ToolkitGroup(click.Group):
    """Commands loaded on demand, in workflow order; every error one line and an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name].split(":")
        command: click.Command = getattr(
            importlib.import_module(f"toolkit.cli.{module}"), attribute
        )
        return command

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except ToolkitError as exc:
            _fail(str(exc), exc.exit_code)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx else "toolkit"
            _fail(f"{exc.format_message().rstrip('.')} (see '{command} --help').", 2)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except (KeyboardInterrupt, click.Abort):
            _fail("interrupted.", INTERRUPTED)
        sys.exit(code if isinstance(code, int) else 0)  # ctx.exit()'s code, or success


@click.group(
    cls=ToolkitGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--catalog",
    "catalog_dir",
    metavar="DIR",
    help=f"A directory of your own configs laid over the built-in catalog (or set {CATALOG_ENV}).",
)
@click.version_option(package_name="model-serving-toolkit")
@click.pass_context
def cli(ctx: click.Context, catalog_dir: str | None) -> None:
    """Build, start, probe and stop model-serving containers from one catalog.

    \b
    Examples:
      toolkit list
      toolkit plan llama3-70b_4
      toolkit --catalog ~/models add Qwen/Qwen2.5-7B-Instruct
      toolkit build llama3-70b_4
      toolkit start llama3-70b_4
      toolkit probe llama3-70b_4
      toolkit stop llama3-70b_4

    Shell completion of commands and config names: eval "$(_TOOLKIT_COMPLETE=bash_source toolkit)"
    """
    ctx.obj = State(user_catalog(catalog_dir))
