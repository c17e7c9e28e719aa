"""`render` (every target) and `ci-matrix`: files generated from the catalog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
@click.option(
    "--registry",
    metavar="HOST",
    help="Registry `push` pushed the images to (kubernetes: required).",
)
@click.option(
    "--namespace",
    help="Image namespace in the registry, as for `push` (kubernetes; default: toolkit). "
    "Not a Kubernetes namespace.",
)
@click.option("--tag", help="Image tag (kubernetes; default: the backend version, as `push` tags).")
@click.option("--ingress-host", metavar="HOST", help="Also render an Ingress for this host.")
@click.option("--cpu-request", metavar="QTY", help="CPU request per pod (default: derived).")
@click.option(
    "--memory-request", metavar="QTY", help="Memory request per pod, e.g. 64Gi (default: derived)."
)
@click.option(
    "--memory-limit", metavar="QTY", help="Memory limit per pod, e.g. 96Gi (default: derived)."
)
@click.option(
    "--toleration",
    "tolerations",
    multiple=True,
    metavar="KEY[=VALUE]:EFFECT",
    help="Tolerate this taint too (GPU configs always tolerate nvidia.com/gpu:NoSchedule).",
)
@click.option(
    "--node-selector", multiple=True, metavar="KEY=VALUE", help="Schedule only on such nodes."
)
@click.option("--runtime-class", metavar="NAME", help="The pods' runtime class, e.g. nvidia.")
@click.option("--priority-class", metavar="NAME", help="The pods' priority class.")
@click.option(
    "--gpu-product",
    "gpu_products",
    multiple=True,
    metavar="PRODUCT",
    help="Only nodes whose nvidia.com/gpu.product is this, e.g. NVIDIA-H100-80GB-HBM3; repeat "
    "for several.",
)
@click.option(
    "--shared-storage-class",
    metavar="CLASS",
    help="A ReadWriteMany storage class: a multi-node group shares one model copy.",
)
@click.option(
    "--api-from",
    multiple=True,
    metavar="NAMESPACE",
    help="Admit API clients from this namespace; repeat; '*' for anywhere (default: the "
    "service's own namespace).",
)
@click.option(
    "--top-level",
    is_flag=True,
    help="Also write a kustomization over every config folder in the output folder.",
)
@click.option(
    "--autoscale-max",
    type=click.IntRange(min=1),
    metavar="N",
    help="A KEDA ScaledObject on the queue length, up to N replicas (needs --prometheus).",
)
@click.option("--prometheus", metavar="URL", help="The Prometheus KEDA queries.")
@pass_state
def render(
    state: State,
    /,
    names: tuple[str, ...],
    check: bool,
    target: str,
    out: Path | None,
    registry: str | None,
    namespace: str | None,
    tag: str | None,
    ingress_host: str | None,
    **cluster: Any,
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
      toolkit render --target kubernetes -o k8s --registry ghcr.io --top-level \\
        --gpu-product NVIDIA-H100-80GB-HBM3 --shared-storage-class nfs llama3.1-405b_16
    """
    from toolkit import render as targets

    catalog = state.catalog
    selected = [catalog[n].name for n in names] or None
    options = targets.Options(
        out, check, registry, namespace, tag, ingress_host, targets.Cluster(**cluster)
    )
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
