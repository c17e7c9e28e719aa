"""`render` (every target) and `ci-matrix`: files generated from the catalog."""

from __future__ import annotations

import json
from pathlib import Path

import click

from toolkit.cli.common import State, complete_names, pass_state
from toolkit.render import TARGETS


@click.command()
@click.argument("names", nargs=-1, shell_complete=complete_names)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 and name the files that differ from the catalog.",
)
@click.option(
    "--target",
    type=click.Choice(list(TARGETS)),
    default="compose",
    show_default=True,
    help="; ".join(f"{name}: {what}" for name, what in TARGETS.items()) + ".",
)
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    help="compose: write compose/ and images/ (with each config's build context) under this "
    "directory (default: the repository; required for an installed toolkit); kubernetes: the "
    "folder to write (required). Files the toolkit did not write are never overwritten.",
)
@click.option("--registry", metavar="HOST", help="Registry the images were pushed to (kubernetes).")
@click.option(
    "--namespace",
    help="Image namespace in the registry, as for `push` (kubernetes; default: toolkit). "
    "Not a Kubernetes namespace.",
)
@click.option("--tag", help="Image tag (kubernetes; default: the backend version, as `push` tags).")
@click.option("--ingress-host", metavar="HOST", help="Also render an Ingress for this host.")
@pass_state
def render(
    state: State,
    names: tuple[str, ...],
    check: bool,
    target: str,
    out: Path | None,
    registry: str | None,
    namespace: str | None,
    tag: str | None,
    ingress_host: str | None,
) -> None:
    """Render compose files and Dockerfiles, or Kubernetes manifests.

    \b
    Examples:
      toolkit render
      toolkit render llama3-70b_4
      toolkit render --check
      toolkit render -o ./rendered
      toolkit render --target kubernetes -o k8s --registry ghcr.io --namespace my-org
      toolkit render --target kubernetes -o k8s --registry ghcr.io llama3.1-405b_16
    """
    from toolkit import render as targets

    catalog = state.catalog
    selected = [catalog[n].name for n in names] or None
    options = targets.Options(out, check, registry, namespace, tag, ingress_host)
    click.echo(targets.run(target, catalog, selected, options))


@click.command("ci-matrix")
@click.option(
    "--changed-since",
    metavar="REF",
    help="Only configs whose build inputs changed since this git commit.",
)
@pass_state
def ci_matrix(state: State, changed_since: str | None) -> None:
    """Print the CI build matrix as JSON, one entry per config.

    \b
    Examples:
      toolkit ci-matrix
      toolkit ci-matrix --changed-since origin/main
    """
    from toolkit.release import matrix as ci

    click.echo(json.dumps(ci.matrix(state.catalog, changed_since), sort_keys=True))
