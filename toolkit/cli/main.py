"""The `toolkit` command line: parse arguments, call the library, print. Nothing else lives here.

Heavy modules (pydantic, HTTP clients, the Docker SDK) are imported inside the commands that need
them, so `toolkit --help`, `list` and `render` start fast and work on a machine without Docker.
Every error leaves through `ToolkitGroup.main` as one line and an exit code: 2 for usage errors
and unknown names, 1 for a negative result or a failed step, 130 for an interrupt.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from toolkit import output
from toolkit.bench.cli import bench  # light: Click only
from toolkit.errors import ToolkitError, UsageError
from toolkit.paths import CATALOG_ENV, user_catalog
from toolkit.protocols import Protocol

if TYPE_CHECKING:
    from toolkit.catalog.configs import Catalog, Config
    from toolkit.lifecycle.start import Service
    from toolkit.release.registry import PushOptions

INTERRUPTED = 130


@dataclass
class State:
    """What the group resolves once for every command: the user catalog and the catalog."""

    catalog_dir: str | None
    _catalog: Catalog | None = field(default=None, repr=False)

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            from toolkit.catalog.configs import Catalog

            self._catalog = Catalog.load(self.catalog_dir)
        return self._catalog

    def config(self, name: str) -> Config:
        return self.catalog[name]


pass_state = click.make_pass_decorator(State)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class ToolkitGroup(click.Group):
    """Commands in workflow order, and every error turned into one line and an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

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


def _names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of config names, from the cached catalog rows."""
    from toolkit.cli.cache import list_rows

    try:
        rows = list_rows(user_catalog(ctx.find_root().params.get("catalog_dir")))
    except ToolkitError:
        return []
    return [row["name"] for row in rows if row["name"].startswith(incomplete)]


def name_argument(required: bool = True) -> Callable[[Any], Any]:
    return click.argument("name", required=required, shell_complete=_names)


def _echo_json(value: Any) -> None:
    click.echo(output.as_json(value))


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
      toolkit build llama3-70b_4
      toolkit start llama3-70b_4
      toolkit probe llama3-70b_4
      toolkit stop llama3-70b_4

    Shell completion of commands and config names: eval "$(_TOOLKIT_COMPLETE=bash_source toolkit)"
    """
    ctx.obj = State(user_catalog(catalog_dir))


@cli.command("list")
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
        _echo_json(rows)
    else:
        click.echo(output.table(rows, output.LIST_COLUMNS))


@cli.command()
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

    data = index.show_with_engine(index.show_data(state.catalog, name))
    _remember(state)
    if as_json:
        _echo_json(data)
    else:
        import yaml

        click.echo(yaml.safe_dump(data, sort_keys=False).rstrip())


@cli.command()
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
    callback=lambda ctx, param, value: _gpu_ids(ctx, param, value),
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

    Exit status 0 when it fits, 1 when it does not, 2 for a usage error. Needs no GPU and no
    network (unless --model names a Hugging Face repo).

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
        from toolkit.host.gpus import discover

        host = discover()
        if not host:
            raise ToolkitError(
                "no NVIDIA GPU was found on this host (neither NVML nor nvidia-smi "
                "answered); plan with --gpu-memory instead."
            )
        chosen = [g for g in host if gpu_ids is None or g.index in gpu_ids]
        missing = sorted(set(gpu_ids or []) - {g.index for g in host})
        if missing:
            raise UsageError(
                f"GPU id(s) {','.join(missing)} do not exist on this host (it has "
                f"{','.join(g.index for g in host)}); pick others with --gpus."
            )
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
    _remember(state)
    if as_json:
        click.echo(json.dumps(result.as_dict(), sort_keys=True))
    else:
        click.echo(planning.describe(result))
    ctx.exit(0 if result.fits else 1)


def _remember(state: State) -> None:
    """Store the read-only answers of a catalog that loaded cleanly, for the fast path."""
    from toolkit.cli import cache as index

    if not state.catalog.errors and index.cached(state.catalog_dir) is None:
        index.store(state.catalog_dir, state.catalog)


def push_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options `push` and `build --push` share, handed to the command as one PushOptions."""

    @functools.wraps(command)
    def with_push(
        *args: Any,
        registries: tuple[str, ...],
        namespace: str,
        extra_tags: tuple[str, ...],
        latest: bool,
        username: str | None,
        password_stdin: bool,
        **kwargs: Any,
    ) -> Any:
        from toolkit.release.registry import PushOptions

        auth = None
        if password_stdin:
            if not username:
                raise UsageError(
                    "--password-stdin needs --username (or TOOLKIT_REGISTRY_USERNAME)."
                )
            auth = {"username": username, "password": sys.stdin.readline().strip()}
        options = PushOptions(registries, namespace, extra_tags, latest, auth)
        return command(*args, push_to=options, **kwargs)

    decorators = [
        click.option(
            "--registry",
            "registries",
            multiple=True,
            metavar="HOST",
            help="Registry host to push to, e.g. ghcr.io; repeat for several.",
        ),
        click.option("--namespace", default="toolkit", show_default=True, help="Image namespace."),
        click.option(
            "--tag", "extra_tags", multiple=True, help="An extra tag; repeat for several."
        ),
        click.option("--latest", is_flag=True, help="Also move the `latest` tag."),
        click.option(
            "--username",
            envvar="TOOLKIT_REGISTRY_USERNAME",
            help="Registry user (default: the credentials of `docker login`).",
        ),
        click.option(
            "--password-stdin", is_flag=True, help="Read the registry password from standard input."
        ),
    ]
    for decorator in reversed(decorators):
        with_push = decorator(with_push)
    return with_push


def _push(state: State, name: str, options: PushOptions) -> list[dict[str, str]]:
    from toolkit.lifecycle import start as engine
    from toolkit.release import registry

    if not options.registries:
        raise UsageError("name at least one --registry to push to.")
    pushed = registry.push(state.catalog, state.config(name), options, engine.stderr_progress)
    return [{"ref": p.ref, "digest": p.digest} for p in pushed]


@cli.command()
@name_argument()
@click.option("--no-cache", is_flag=True, help="Build every layer anew.")
@click.option(
    "--ca-bundle",
    type=click.Path(path_type=Path),
    help="CA bundle (PEM) handed to pip as a build secret, for TLS-intercepting proxies.",
)
@click.option("--pip-index-url", metavar="URL", help="A pip index mirror.")
@click.option(
    "--wheelhouse",
    type=click.Path(path_type=Path),
    help="A folder of wheels pip prefers (e.g. a CPU torch).",
)
@click.option(
    "--base-image",
    metavar="IMAGE",
    help="Base image instead of the pinned one (e.g. one scripts/make-base-image.sh made).",
)
@click.option(
    "--cache-from",
    multiple=True,
    metavar="SPEC",
    help="BuildKit cache source, e.g. type=registry,ref=HOST/NS/NAME:buildcache.",
)
@click.option("--cache-to", multiple=True, metavar="SPEC", help="BuildKit cache destination.")
@click.option("--push", "then_push", is_flag=True, help="Push after building (see `push`).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@push_options
@pass_state
def build(
    state: State,
    name: str,
    no_cache: bool,
    ca_bundle: Path | None,
    pip_index_url: str | None,
    wheelhouse: Path | None,
    base_image: str | None,
    cache_from: tuple[str, ...],
    cache_to: tuple[str, ...],
    then_push: bool,
    as_json: bool,
    push_to: PushOptions,
) -> None:
    """Build a config's image from its rendered Dockerfile.

    The image is tagged toolkit/NAME:VERSION locally (VERSION: the backend's pinned version).

    \b
    Examples:
      toolkit build llama3-70b_4
      toolkit build flux.1-dev --ca-bundle /etc/ssl/certs/ca-certificates.crt
      toolkit build demo-image --wheelhouse ./wheels --base-image toolkit-local/python:3.11-bookworm
      toolkit build llama3-8b --push --registry ghcr.io --namespace my-org
    """
    from toolkit.release.build import BuildOptions
    from toolkit.release.build import build as build_image

    options = BuildOptions(
        no_cache, ca_bundle, pip_index_url, wheelhouse, base_image, cache_from, cache_to
    )
    built = build_image(state.catalog, state.config(name), options)
    pushed = _push(state, name, push_to) if then_push else []
    if as_json:
        _echo_json({"image": built.ref, "id": built.image_id, "pushed": pushed})
        return
    click.echo(f"built {built.ref} ({built.image_id[:19]})")
    for entry in pushed:
        click.echo(f"{entry['ref']}@{entry['digest']}")


@cli.command()
@name_argument()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of what was pushed.")
@push_options
@pass_state
def push(state: State, name: str, as_json: bool, push_to: PushOptions) -> None:
    """Push a built image under tags that never move.

    Tags: the backend version, sha-<commit> and the date (and latest with --latest); each
    pushed reference is printed with its digest.

    \b
    Examples:
      toolkit push llama3-70b_4 --registry ghcr.io --namespace my-org
      echo "$TOKEN" | toolkit push flux.1-dev --registry ghcr.io --registry docker.io \\
          --namespace my-org --username me --password-stdin --latest
    """
    pushed = _push(state, name, push_to)
    if as_json:
        _echo_json(pushed)
    else:
        for entry in pushed:
            click.echo(f"{entry['ref']}@{entry['digest']}")


def _gpu_ids(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None
    ids = [g.strip() for g in value.split(",") if g.strip()]
    bad = [g for g in ids if not g.isdigit()]
    if bad or not ids:
        raise click.BadParameter(
            f"'{value}' is not a list of GPU ids; write them like 0 or 4,5,6,7."
        )
    return ids


def _address(ctx: click.Context, param: click.Parameter, value: str) -> str:
    import ipaddress

    if value == "localhost":
        return value
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise click.BadParameter(
            f"'{value}' is not an IPv4 address; use 127.0.0.1 (default) or 0.0.0.0."
        ) from None
    return value


@cli.command()
@name_argument()
@click.option(
    "--stall-minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Stop a download that moves no byte for this long (run pull again to resume).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object when done.")
@pass_state
def pull(state: State, name: str, stall_minutes: float, as_json: bool) -> None:
    """Fetch a config's weights into the model cache before `start`.

    Resolves the config's revision, downloads what the cache lacks (resuming a partial
    download), and records the commit and each file's SHA-256 in /cache/locks/NAME.json in
    the cache volume. Honours HF_ENDPOINT and the token start uses (HF_TOKEN_FILE, HF_TOKEN).

    \b
    Examples:
      toolkit pull llama3.1-405b_8
      HF_ENDPOINT=https://hub.internal toolkit pull llama3-8b --stall-minutes 30
    """
    from toolkit.lifecycle import pull as pulling

    config = state.config(name)
    with output.Waiting(sys.stderr) as waiting:
        pulled = pulling.pull(state.catalog, config, waiting.show, stall_minutes)
    if isinstance(pulled, str):
        click.echo(
            output.as_json({"config": name, "pulled": False, "reason": pulled})
            if as_json
            else pulled
        )
        return
    if as_json:
        _echo_json(
            {
                "config": name,
                "pulled": True,
                "repo": pulled.repo,
                "commit": pulled.commit,
                "bytes": pulled.total,
                "files": pulled.files,
                "lock": pulled.lock,
            }
        )
        return
    click.echo(
        f"{name}: {pulled.repo} at commit {pulled.commit[:12]} is in the model cache "
        f"({pulling.size(pulled.total)} in {pulled.files} file(s)); the lock is {pulled.lock}."
    )


@cli.command()
@name_argument()
@click.option(
    "--gpus",
    metavar="IDS",
    callback=_gpu_ids,
    help="GPU ids to use, comma-separated (default: 0..N-1).",
)
@click.option("--port", type=click.IntRange(1, 65535), help="Host port (default: the config's).")
@click.option(
    "--bind",
    default="127.0.0.1",
    show_default=True,
    callback=_address,
    help="Host address to publish on; 0.0.0.0 exposes the service to the network.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    help="Seconds to wait for the model (default: the config's startup_seconds).",
)
@click.option("--no-wait", is_flag=True, help="Return once the container is up.")
@click.option("--force", is_flag=True, help="Start even when the plan says it does not fit.")
@click.option(
    "--api-key",
    envvar="TOOLKIT_API_KEY",
    help="Bearer token the server requires; needed to --bind beyond loopback.",
)
@click.option(
    "--stall-minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Stop a download that moves no byte for this long (it resumes on the next start).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object when ready.")
@click.option(
    "--role",
    type=click.Choice(["head", "worker"]),
    help="A config that spans hosts: serve as the head here, or join one as a worker.",
)
@click.option("--head-address", metavar="HOST", help="The head host a --role worker joins.")
@pass_state
def start(
    state: State,
    name: str,
    gpus: list[str] | None,
    port: int | None,
    bind: str,
    timeout: float | None,
    no_wait: bool,
    force: bool,
    api_key: str | None,
    stall_minutes: float,
    as_json: bool,
    role: str | None,
    head_address: str | None,
) -> None:
    """Start a config's service and wait until its model answers.

    Starting a service that already runs with the same settings succeeds and says so. Missing
    weights are pulled first (see `pull`); --timeout counts from the end of the download.

    \b
    Examples:
      toolkit start llama3-70b_4
      toolkit start llama3-70b_4 --gpus 4,5,6,7 --port 2042
      toolkit start demo-image --timeout 120
      TOOLKIT_API_KEY=... toolkit start llama3-8b --bind 0.0.0.0
    """
    from toolkit.lifecycle import start as engine
    from toolkit.protocols import probe as protocols

    config = state.config(name)
    from toolkit.lifecycle import roles as noderole

    noderole.check_role(config, role, head_address)
    if role == "worker" and head_address is not None:
        started_worker = noderole.start_worker(state.catalog, config, head_address)
        click.echo(f"{name} worker {started_worker} started; it joins the head at {head_address}.")
        return
    options = engine.StartOptions(
        gpus, port, bind, timeout, not no_wait, force, api_key, stall_minutes
    )
    began = time.monotonic()
    with output.Waiting(sys.stderr) as waiting:
        started = engine.start(state.catalog, config, options, waiting.show)
    service = started.service
    elapsed = time.monotonic() - began
    if as_json:
        _echo_json(
            {
                "config": service.name,
                "url": service.url,
                "port": service.port,
                "gpus": service.gpus,
                "elapsed_s": round(elapsed, 2),
                "already_running": started.already_running,
                "ready": not no_wait,
            }
        )
        return
    if started.already_running:
        click.echo(f"{name} is already running at {service.url} with the same settings.")
    elif no_wait:
        click.echo(f"{name} started at {service.url}; not waiting for {config.model}.")
        return
    else:
        click.echo(
            f"{name} is ready at {service.url} after {elapsed:.1f} s: {config.model} answers."
        )
    click.echo(f"try: {protocols.example_request(service.protocol, service.url, service.model)}")


def _service(state: State, name: str) -> Service | None:
    """The running service of this name, from its container's labels (so one started from
    another catalog is found too); None if it does not run. A name that neither runs nor is in
    the catalog is a usage error (exit 2), whether or not an engine answers."""
    from toolkit.lifecycle import start as engine

    known = name in state.catalog or name in state.catalog.errors
    try:
        service = engine.running_service(name)
    except engine.EngineError:
        if not known:
            state.config(name)  # "unknown config ..., did you mean"
        raise
    if service is None and not known:
        state.config(name)
    return service


def _running(state: State, name: str) -> Service:
    """The running service of this name; one that does not run is an error."""
    from toolkit.lifecycle import start as engine

    service = _service(state, name)
    if service is None:
        raise ToolkitError(f"{name} is not running; start it with 'toolkit start {name}'.")
    now = engine.state_of(name)
    if now != "running":
        raise ToolkitError(
            f"{name} is {now}, not running; its log says why: 'toolkit logs {name}'."
        )
    return service


def service_endpoint(ctx: click.Context, name: str) -> tuple[Service, Catalog, Config | None]:
    """The running service as probe finds it, with the catalog and its config (for `bench`); the
    config is None where the service was started from a catalog this one does not hold."""
    from toolkit.catalog.configs import CatalogError

    state = ctx.find_object(State)
    assert state is not None
    service = _running(state, name)
    try:
        return service, state.catalog, state.config(name)
    except CatalogError:
        return service, state.catalog, None


@cli.command()
@name_argument(required=False)
@click.option("--url", help="Probe this endpoint instead of a catalog service.")
@click.option(
    "--protocol",
    type=click.Choice([p.value for p in Protocol]),
    help="The endpoint's protocol (with --url).",
)
@click.option("--model", help="The served model name (with --url).")
@click.option("--vision", is_flag=True, help="Also send an image in a chat (with --url).")
@click.option("--api-key", envvar="TOOLKIT_API_KEY", help="Bearer token, if the server has one.")
@click.option(
    "--size",
    default="64x64",
    show_default=True,
    callback=lambda ctx, param, value: _size(value),
    help="Image size WxH for openai-image.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=120.0,
    show_default=True,
    help="Seconds per request.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def probe(
    ctx: click.Context,
    name: str | None,
    url: str | None,
    protocol: str | None,
    model: str | None,
    vision: bool,
    api_key: str | None,
    size: str,
    timeout: float,
    as_json: bool,
) -> None:
    """Smoke-test a running model over its protocol.

    Exit status 0 when every check passes, 1 when one fails, 2 for a usage error.

    \b
    Examples:
      toolkit probe llama3-70b_4
      toolkit probe --url http://127.0.0.1:1042 --protocol openai-text --model Llama3-70B --json
    """
    from toolkit.protocols import probe as protocols

    state = ctx.find_object(State)
    assert state is not None
    if name and (url or protocol or model):
        raise UsageError("give a config NAME or --url/--protocol/--model, not both.")
    if name:
        service = _running(state, name)
        url, protocol, model, vision = service.url, service.protocol, service.model, service.vision
    elif not (url and protocol and model):
        raise UsageError("give a config NAME, or all of --url, --protocol and --model.")
    verdict = protocols.probe(
        protocol, url, model, vision=vision, api_key=api_key, timeout=timeout, size=size
    )
    if as_json:
        click.echo(json.dumps(verdict.as_dict(), sort_keys=True))
    else:
        click.echo(protocols.describe(verdict))
    ctx.exit(0 if verdict.passed else 1)


cli.add_command(bench)  # after probe: commands list in workflow order


def _size(value: str) -> str:
    import re

    match = re.fullmatch(r"([1-9][0-9]{0,4})x([1-9][0-9]{0,4})", value)
    if not match:
        raise click.BadParameter(f"'{value}' is not an image size; write it like 512x512.")
    return value


@cli.command()
@name_argument(required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@pass_state
def status(state: State, name: str | None, as_json: bool) -> None:
    """Show what runs: state, health, URL, GPUs, uptime, restarts.

    \b
    Examples:
      toolkit status
      toolkit status llama3-70b_4 --json
    """
    from toolkit.lifecycle import start as engine

    if name:
        _service(state, name)  # an unknown name: exit 2
    rows = engine.status(name)
    if as_json:
        _echo_json(rows)
    elif rows:
        click.echo(output.status_table(rows))
    else:
        click.echo(f"{name} is not running." if name else "no toolkit service is running.")


@cli.command()
@name_argument()
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option(
    "--tail",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Lines from the end to show.",
)
@click.option(
    "--all-lines",
    is_flag=True,
    help="Also show the access lines of healthchecks and readiness polls.",
)
@pass_state
def logs(state: State, name: str, follow: bool, tail: int, all_lines: bool) -> None:
    """Print a service's log lines, healthchecks left out.

    \b
    Examples:
      toolkit logs llama3-70b_4 --tail 20
      toolkit logs flux.1-dev -f
    """
    from toolkit.lifecycle import start as engine

    if _service(state, name) is None:
        raise ToolkitError(f"{name} is not running; start it with 'toolkit start {name}'.")
    pending = ""
    for chunk in engine.logs(name, follow, tail):
        pending += chunk
        *lines, pending = pending.split("\n")
        for line in lines:
            if all_lines or not engine.line_is_poll(line):
                click.echo(line)
    if pending and (all_lines or not engine.line_is_poll(pending)):
        click.echo(pending)


@cli.command()
@name_argument()
@click.option(
    "--volumes",
    is_flag=True,
    help="Also delete the shared model cache volume (every config's weights); refused while "
    "another service uses it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_state
def stop(state: State, name: str, volumes: bool, as_json: bool) -> None:
    """Stop a service and remove its containers; safe to repeat.

    \b
    Examples:
      toolkit stop llama3-70b_4
      toolkit stop flux.1-dev --volumes
    """
    from toolkit.lifecycle import start as engine

    _service(state, name)  # an unknown name that does not run: exit 2
    was_running = engine.stop(name, volumes)
    if as_json:
        _echo_json({"config": name, "was_running": was_running, "cache_removed": volumes})
        return
    if was_running:
        click.echo(f"stopped {name}" + (" and removed the model cache" if volumes else ""))
    else:
        click.echo(f"{name} is not running; nothing to stop.")


@cli.command()
@click.option(
    "--interval",
    type=click.FloatRange(min=0.5),
    default=30.0,
    show_default=True,
    help="Seconds between inspections of every service (events arrive at once).",
)
@click.option(
    "--backoff",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds before the first restart; each consecutive one doubles it.",
)
@click.option(
    "--max-backoff",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="The longest wait before a restart, in seconds.",
)
@click.option(
    "--max-restarts",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Consecutive restarts of one service before giving up on it.",
)
@click.option(
    "--reset-after",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="Seconds healthy after which the consecutive count starts again.",
)
@click.option(
    "--for", "duration", type=click.FloatRange(min=0), help="Stop after this many seconds."
)
def watch(
    interval: float,
    backoff: float,
    max_backoff: float,
    max_restarts: int,
    reset_after: float,
    duration: float | None,
) -> None:
    """Restart services that turn unhealthy (in the foreground).

    It follows the engine's health events, restarts an unhealthy service after a backoff,
    gives up after --max-restarts in a row, logs every action to stderr, and leaves alone what
    `toolkit stop` stopped. `toolkit status` shows its restarts and the last failure.

    \b
    Examples:
      toolkit watch
      toolkit watch --backoff 5 --max-restarts 3
    """
    import logging
    import signal

    from toolkit.lifecycle import watch as watchdog

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
        stream=sys.stderr,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a service manager's stop
    policy = watchdog.Policy(interval, backoff, max_backoff, max_restarts, reset_after)
    watchdog.watch(policy, None if duration is None else time.time() + duration)


@cli.command()
@name_argument(required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option(
    "--serve",
    "serve_port",
    type=click.IntRange(1, 65535),
    metavar="PORT",
    help="Serve every service's figures as one Prometheus endpoint on this port.",
)
@click.option(
    "--bind",
    default="127.0.0.1",
    show_default=True,
    callback=_address,
    help="Address of the --serve endpoint.",
)
@pass_state
def metrics(
    state: State, name: str | None, as_json: bool, serve_port: int | None, bind: str
) -> None:
    """Show live figures: load, latency, tokens/s, GPUs, restarts.

    Percentiles and rates cover the last minute: the difference from a scrape kept from an
    earlier call, or from one taken 5 s before when there is none.

    \b
    Examples:
      toolkit metrics
      toolkit metrics llama3-8b --json
      toolkit metrics --serve 9400
    """
    from toolkit.observe import metrics as figures
    from toolkit.host.engine import connect

    if name:
        _service(state, name)  # an unknown name: exit 2
    if serve_port is not None:
        from toolkit.observe import serve as metrics_server

        click.echo(f"serving the figures of every service at http://{bind}:{serve_port}/metrics")
        metrics_server.serve(bind, serve_port)
        return
    reader = figures.load_reader(figures.WINDOW)
    rows = reader.figures(connect(), name, figures.FIRST_WAIT)
    figures.save_reader(reader)
    if as_json:
        _echo_json(rows)
    elif rows:
        click.echo("\n\n".join(figures.describe(row) for row in rows))
    else:
        click.echo(f"{name} is not running." if name else "no toolkit service is running.")


@cli.command()
@click.argument("names", nargs=-1, shell_complete=_names)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 and name the files that differ from the catalog.",
)
@click.option(
    "--target",
    type=click.Choice(["compose", "kubernetes"]),
    default="compose",
    show_default=True,
    help="compose: compose files and Dockerfiles; kubernetes: a kustomize directory per config.",
)
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    help="compose: write compose/ and images/ under this directory (default: the repository, or "
    "the current directory for an installed toolkit); kubernetes: the folder to write (required).",
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
    from toolkit.render import compose as rendering
    from toolkit.paths import data_root, is_checkout

    catalog = state.catalog
    selected = [catalog[n].name for n in names] or None
    if target == "kubernetes":
        from toolkit.render import kubernetes

        files = kubernetes.write(
            catalog, selected, out, check, registry, namespace, tag, ingress_host
        )
        click.echo(f"rendered {len(files)} files for {len(selected or catalog)} configs in {out}")
        return
    if registry or namespace or tag or ingress_host:
        raise UsageError(
            "--registry, --namespace, --tag and --ingress-host go with --target kubernetes."
        )
    root = out or (data_root() if is_checkout() else Path.cwd())
    if check:
        differ = rendering.check(catalog, selected, root)
        if differ:
            listing = ", ".join(_relative(p, root) for p in differ)
            raise ToolkitError(
                f"{len(differ)} generated file(s) differ from the catalog ({listing}); "
                "run 'toolkit render' and commit the result."
            )
        click.echo(f"all generated files match the catalog ({len(catalog)} configs)")
        return
    written = rendering.write(catalog, selected, root)
    click.echo(f"rendered {len(written)} files for {len(selected or catalog)} configs in {root}")


@cli.command("ci-matrix")
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


@cli.command("export")
@name_argument()
@click.option(
    "-o",
    "--output",
    "bundle_path",
    type=click.Path(path_type=Path),
    required=True,
    help="The bundle file to write.",
)
@click.option(
    "--with-model", type=click.Path(path_type=Path), help="Also carry this local model directory."
)
@pass_state
def export_(state: State, name: str, bundle_path: Path, with_model: Path | None) -> None:
    """Write an air-gapped bundle of a built image.

    The bundle holds the image, the compose file, checksums and, optionally, the weights.

    \b
    Examples:
      toolkit export flux.1-dev -o flux.bundle
      toolkit export demo-image -o demo.bundle --with-model .demo/models/tiny-diffusion
    """
    from toolkit.release import bundle

    manifest = bundle.export(state.catalog, state.config(name), bundle_path, with_model)
    click.echo(f"wrote {bundle_path}: {manifest['image']} and {len(manifest['files'])} files")


@cli.command("import")
@click.argument("bundle_file", type=click.Path(path_type=Path))
@click.option(
    "--model-dir",
    type=click.Path(path_type=Path),
    help="Where to put carried model weights (default: ./<config>-model).",
)
def import_(bundle_file: Path, model_dir: Path | None) -> None:
    """Verify a bundle's checksums, then load its image.

    \b
    Examples:
      toolkit import flux.bundle
      toolkit import demo.bundle --model-dir /srv/models/tiny-diffusion
    """
    from toolkit.release import bundle

    manifest = bundle.import_(bundle_file, model_dir)
    click.echo(
        f"loaded {manifest['image']}"
        + (f"; model in {manifest['model_dir']}" if "model_dir" in manifest else "")
    )


@cli.command()
@pass_state
def version(state: State) -> None:
    """Print the versions of the toolkit, engine, Compose, backends.

    \b
    Examples:
      toolkit version
    """
    from importlib.metadata import version as package_version

    from toolkit.host.compose import compose_version
    from toolkit.host.engine import Engine

    rows = [{"component": "toolkit", "version": package_version("model-serving-toolkit")}]
    try:
        engine = Engine().version()
    except ToolkitError:
        engine = "not reachable"
    rows.append({"component": "docker engine", "version": engine})
    rows.append({"component": "docker compose", "version": compose_version() or "not found"})
    for backend in state.catalog.backends.values():
        rows.append(
            {
                "component": f"backend {backend.name}",
                "version": f"{backend.version} ({backend.base})",
            }
        )
    click.echo(output.table(rows, ["component", "version"]))


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
