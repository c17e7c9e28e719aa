"""Commands that read the catalog: `list`, `show`, `plan`."""

from __future__ import annotations

import json
from typing import Any

import click

from toolkit import output
from toolkit.cli.common import (
    State,
    echo_json,
    gpu_ids,
    name_argument,
    pass_state,
    remember,
)
from toolkit.errors import ToolkitError, UsageError


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@pass_state
def list_(state: State, as_json: bool) -> None:
    """List every config, whether its image is built, where it runs.

    \b
    Examples:
      toolkit list
      toolkit list --json | jq -r '.[].name'
    """
    from toolkit.cli.cache import list_rows, rows_of, with_engine

    try:
        rows = list_rows(state.catalog_dir)
    except ToolkitError:
        # A broken config file hides none of the others: list them, then say what is broken.
        catalog = state.catalog  # a wrong catalog directory raises here
        _print_rows(with_engine(rows_of(catalog)), as_json)
        catalog.check()
        raise
    _print_rows(with_engine(rows), as_json)


def _print_rows(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        echo_json(rows)
    else:
        click.echo(output.table(rows, output.LIST_COLUMNS))


@click.command()
@name_argument()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
@pass_state
def show(state: State, name: str, as_json: bool) -> None:
    """Show one config as resolved: defaults, image, sizes.

    \b
    Examples:
      toolkit show llama3-70b_4
      toolkit show flux.1-dev --json
    """
    from toolkit.cli import cache as index

    data = index.show_data(state.catalog, name)
    disk = index.image_disk_gib(data["image"])
    remember(state)
    if as_json:
        echo_json(data | {"image_disk_gib": disk})
    else:
        click.echo(index.show_text(index.show_yaml(data), disk))


@click.command()
@name_argument()
@click.option(
    "--gpu-count",
    type=click.IntRange(0, 64),
    metavar="N",
    help="Plan for N GPUs (default: the config's).",
)
@click.option(
    "--gpus",
    "gpu_ids",
    metavar="IDS",
    callback=lambda ctx, param, value: gpu_ids(ctx, param, value),
    help="Plan for these GPU ids, as start takes them (with --host: their free memory).",
)
@click.option(
    "--gpu-memory",
    "gpu_memory",
    metavar="SIZE",
    help="Memory of one GPU, e.g. 80GiB or 79.2 (default: 79.22 GiB, an 80 GB card).",
)
@click.option(
    "--max-model-len",
    type=click.IntRange(1),
    metavar="TOKENS",
    help="Context to plan for (default: the config's).",
)
@click.option("--host", "on_host", is_flag=True, help="Plan against this host's GPUs.")
@click.option(
    "--model",
    "model_source",
    metavar="DIR|REPO",
    help="Read the model facts from a local model directory or a Hugging Face repo.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def plan(
    ctx: click.Context,
    name: str,
    gpu_count: int | None,
    gpu_ids: list[str] | None,
    gpu_memory: str | None,
    max_model_len: int | None,
    on_host: bool,
    model_source: str | None,
    as_json: bool,
) -> None:
    """Say whether a config fits its GPUs, and with what context.

    Exit status 0 when it fits; 1 when it does not, or when a fact the answer needs is missing
    (UNKNOWN names it); 2 for a usage error. With no GPU, the budget is the container's memory
    limit. Needs no GPU and no network (unless --model names a Hugging Face repo).

    \b
    Examples:
      toolkit plan llama3-70b_4
      toolkit plan llama3-70b_1 --max-model-len 32768 --json
      toolkit plan qwen2-72b_4 --gpu-count 2 --gpu-memory 141GiB
      toolkit plan llama3-70b_4 --host --gpus 4,5,6,7
      toolkit plan llama3-8b --model /srv/models/Meta-Llama-3-8B-Instruct
    """
    from toolkit.plan import memory as planning

    state = ctx.find_object(State)
    assert state is not None
    config = state.config(name)
    if gpu_count is not None and gpu_ids is not None:
        raise UsageError("give --gpu-count or --gpus, not both.")
    gpus = len(gpu_ids) if gpu_ids is not None else gpu_count
    memory = planning.parse_size(gpu_memory) if gpu_memory else planning.DEFAULT_GPU_GIB
    if on_host:
        from toolkit.host import gpus as host_gpus

        host = host_gpus.discover()
        if not host:
            raise ToolkitError(
                "no NVIDIA GPU was found on this host (neither NVML nor nvidia-smi "
                "answered); plan with --gpu-memory instead."
            )
        chosen = host_gpus.select(host, gpu_ids, UsageError)
        memory = min(g.free_gib for g in chosen)
        gpus = len(chosen) if gpus is None else gpus
    info = None
    if model_source:
        from toolkit.plan import facts as modelinfo

        info = modelinfo.read(model_source, config.source.revision)
    # The backend for the GPUs planned: vLLM's CPU variant for none, its GPU build for some.
    backend = state.catalog.backends[config.backend].for_gpus(
        gpus if gpus is not None else config.gpus
    )
    result = planning.plan(config, backend, gpus, memory, max_model_len, info)
    remember(state)
    if as_json:
        click.echo(json.dumps(result.as_dict(), sort_keys=True))
    else:
        click.echo(planning.describe(result))
    ctx.exit(0 if result.fits else 1)
