"""`toolkit add`: a model the user brings becomes a checked config in their catalog."""

from __future__ import annotations

from pathlib import Path

import click

from toolkit.cli.common import State, pass_state
from toolkit.errors import ToolkitError, UsageError
from toolkit.paths import CATALOG_ENV


@click.command()
@click.argument("source", metavar="SOURCE")
@click.option("--name", metavar="NAME", help="The config name (default: from the model's name).")
@click.option(
    "--gpu-memory",
    metavar="SIZE",
    help="Memory of one GPU, e.g. 80GiB (default: 79.22 GiB, an 80 GB card).",
)
@click.option("--host", "on_host", is_flag=True, help="Plan against this host's GPUs.")
@click.option(
    "--gpu-count",
    type=click.IntRange(0, 8),
    metavar="N",
    help="GPUs to serve it on (default: the fewest that fit, from the plan).",
)
@click.option(
    "--context",
    type=click.IntRange(1),
    metavar="TOKENS",
    help="Context length (default: the model's own, capped where it would not fit).",
)
@click.option("--backend", metavar="NAME", help="The backend (default: from the architecture).")
@click.option("--force", is_flag=True, help="Replace an existing config file.")
@click.option(
    "--catalog",
    "catalog_dir",
    metavar="DIR",
    help=f"The catalog directory to write into (default: toolkit --catalog, or {CATALOG_ENV}).",
)
@pass_state
def add(
    state: State,
    source: str,
    name: str | None,
    gpu_memory: str | None,
    on_host: bool,
    gpu_count: int | None,
    context: int | None,
    backend: str | None,
    force: bool,
    catalog_dir: str | None,
) -> None:
    """Add a model you bring, its facts read from the checkpoint.

    SOURCE is a Hugging Face repo (org/name[@revision], through HF_ENDPOINT and the cache), a
    local model folder, or an Ollama tag (ollama:NAME:TAG). Writes one commented config file,
    checked by the catalog's loader, and never replaces one without --force.

    \b
    Examples:
      toolkit --catalog ~/models add Qwen/Qwen2.5-7B-Instruct
      toolkit add Qwen/Qwen3-30B-A3B --gpu-memory 141GiB --catalog ~/models
      toolkit add /srv/models/my-finetune --name my-model --context 8192 --catalog ~/models
      toolkit add ollama:llama3.2:3b --catalog ~/models
    """
    from toolkit.catalog.configs import Catalog
    from toolkit.plan import add as adding
    from toolkit.plan import memory as planning

    directory = catalog_dir or state.catalog_dir
    if not directory:
        raise UsageError(
            f"toolkit add writes into your own catalog; give --catalog DIR or set {CATALOG_ENV}."
        )
    target = Path(directory).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    catalog = Catalog.load(target)
    memory = planning.parse_size(gpu_memory) if gpu_memory else planning.DEFAULT_GPU_GIB
    if on_host:
        from toolkit.host import gpus as host_gpus

        found = host_gpus.discover()
        if not found:
            raise ToolkitError(
                "no NVIDIA GPU was found on this host (neither NVML nor nvidia-smi "
                "answered); plan with --gpu-memory instead."
            )
        memory = min(g.free_gib for g in found)
    parsed = adding.parse_source(source)
    checkpoint, gated = None, False
    if parsed.kind == "hf":
        from toolkit.plan import hub

        checkpoint, gated = hub.read(parsed.reference, parsed.revision)
    added = adding.add(
        catalog,
        target,
        parsed,
        checkpoint,
        gated=gated,
        name=name,
        gpu_memory=memory,
        gpu_count=gpu_count,
        context=context,
        backend=backend,
        force=force,
    )
    click.echo(f"wrote {added.path}")
    for note in added.notes:
        click.echo(f"note: {note}")
    if added.plan is not None:
        click.echo(planning.describe(added.plan))
    at = "" if state.catalog_dir == str(target) else f"--catalog {target} "
    steps = ["build", "check", "start"] if _checkable(target, added.name) else ["build", "start"]
    click.echo("next: " + " && ".join(f"toolkit {at}{step} {added.name}" for step in steps))


def _checkable(catalog_dir: Path, name: str) -> bool:
    """Whether the written config's backend has start-time checks for `toolkit check`."""
    from toolkit.catalog.configs import Catalog

    catalog = Catalog.load(catalog_dir)
    return catalog.backend(catalog[name]).check is not None
