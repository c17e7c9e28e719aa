"""The `toolkit` command line: parse arguments, call the library, print. Nothing else lives here.

Heavy modules (the Docker SDK, HTTP clients) are imported inside the commands that need them, so
`toolkit --help`, `list` and `render` start fast and work on a machine without Docker.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from toolkit.errors import ToolkitError
from toolkit.paths import CATALOG_ENV

if TYPE_CHECKING:
    from toolkit.catalog import Catalog


def _catalog(ctx: click.Context) -> Catalog:
    from toolkit.catalog import Catalog

    obj = ctx.ensure_object(dict)
    if "catalog" not in obj:
        obj["catalog"] = Catalog.load(obj.get("catalog_dir"))
    catalog: Catalog = obj["catalog"]
    return catalog


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True))


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    widths = {c: max([len(c), *(len(str(r[c])) for r in rows)]) for c in columns}
    click.echo("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        click.echo("  ".join(str(row[c]).ljust(widths[c]) for c in columns).rstrip())


class _Failure(click.ClickException):
    """A domain error on its way out: one line on stderr and exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


class _UsageFailure(_Failure):
    exit_code = 2


class ToolkitGroup(click.Group):
    """Turns every ToolkitError raised below it into an exit code, in this one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ToolkitError as exc:
            failure = _UsageFailure if exc.exit_code == 2 else _Failure
            raise failure(str(exc)) from exc


@click.group(
    cls=ToolkitGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--catalog",
    "catalog_dir",
    metavar="DIR",
    envvar=CATALOG_ENV,
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
      toolkit start llama3-70b_4
      toolkit probe llama3-70b_4
      toolkit stop llama3-70b_4
    """
    ctx.ensure_object(dict)["catalog_dir"] = catalog_dir


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List every config: name, model, protocol, backend and GPUs.

    \b
    Examples:
      toolkit list
      toolkit list --json | jq -r '.[].name'
    """
    from toolkit.index import list_rows

    rows = list_rows(ctx.ensure_object(dict).get("catalog_dir"))
    if as_json:
        _echo_json(rows)
    else:
        _table(rows, ["name", "model", "protocol", "backend", "gpus"])


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show one config as the toolkit resolved it, defaults filled in.

    \b
    Examples:
      toolkit show llama3-70b_4
      toolkit show flux.1-dev --json
    """
    catalog = _catalog(ctx)
    config = catalog[name]
    data = config.model_dump(mode="json")
    data["file"] = str(catalog.sources[name])
    data["backend_base_image"] = catalog.backend(config).base
    if as_json:
        _echo_json(data)
    else:
        import yaml

        click.echo(yaml.safe_dump(data, sort_keys=True).rstrip())


@cli.command()
@click.argument("names", nargs=-1)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 and name the files that differ from the catalog.",
)
@click.pass_context
def render(ctx: click.Context, names: tuple[str, ...], check: bool) -> None:
    """Regenerate compose files and Dockerfiles from the catalog.

    \b
    Examples:
      toolkit render
      toolkit render llama3-70b_4
      toolkit render --check
    """
    from toolkit import render as rendering

    catalog = _catalog(ctx)
    selected = [catalog[n].name for n in names] or None
    if check:
        differ = rendering.check(catalog, selected)
        if differ:
            listing = ", ".join(_relative(p) for p in differ)
            raise ToolkitError(
                f"{len(differ)} generated file(s) differ from the catalog ({listing}); "
                "run 'toolkit render' and commit the result."
            )
        click.echo(f"all generated files match the catalog ({len(catalog)} configs)")
        return
    written = rendering.write(catalog, selected)
    click.echo(f"rendered {len(written)} files for {len(selected or catalog)} configs")


def _relative(path: Any) -> str:
    from toolkit.paths import REPO_ROOT

    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def main() -> None:
    cli(prog_name="toolkit")
