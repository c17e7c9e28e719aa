"""The `toolkit` command line: parse arguments, call the library, print. Nothing else lives here.

Heavy modules (the Docker SDK, HTTP clients) are imported inside the commands that need them, so
`toolkit --help`, `list` and `render` start fast and work on a machine without Docker.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from toolkit import output
from toolkit.errors import ToolkitError, UsageError
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
    click.echo(output.as_json(value))


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    click.echo(output.table(rows, columns))


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
        _table(rows, output.LIST_COLUMNS)


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


@cli.command()
@click.argument("name")
@click.option("--gpus", type=click.IntRange(0, 64), help="GPU count (default: the config's).")
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
    gpus: int | None,
    gpu_memory: str | None,
    max_model_len: int | None,
    on_host: bool,
    model_source: str | None,
    as_json: bool,
) -> None:
    """Say whether a config fits its GPUs: memory per GPU and the longest context.

    Exit status 0 when it fits, 1 when it does not. Needs no GPU and no network (unless
    --model names a Hugging Face repo).

    \b
    Examples:
      toolkit plan llama3-70b_4
      toolkit plan llama3-70b_1 --max-model-len 32768 --json
      toolkit plan qwen2-72b_4 --gpus 2 --gpu-memory 141GiB
      toolkit plan llama3-8b --model /srv/models/Meta-Llama-3-8B-Instruct
    """
    from toolkit import plan as planning

    config = _catalog(ctx)[name]
    memory = planning.DEFAULT_GPU_GIB
    if gpu_memory:
        memory = planning.parse_size(gpu_memory)
    if on_host:
        from toolkit.gpus import discover

        host = discover()
        if not host:
            raise UsageError(
                "no NVIDIA GPU was found on this host (neither NVML nor nvidia-smi "
                "answered); plan with --gpu-memory instead."
            )
        memory = min(g.free_gib for g in host)
        gpus = len(host) if gpus is None else gpus
    info = None
    if model_source:
        from toolkit import modelinfo

        info = modelinfo.read(model_source, config.source.revision)
    result = planning.plan(config, gpus, memory, max_model_len, info)
    if as_json:
        click.echo(json.dumps(result.as_dict(), sort_keys=True))
    else:
        click.echo(planning.describe(result))
    ctx.exit(0 if result.fits else 1)


def _push_options(command: Any) -> Any:
    """The options `push` and `build --push` share."""
    options = [
        click.option(
            "--registry",
            "registries",
            multiple=True,
            metavar="HOST",
            help="Registry host to push to, e.g. ghcr.io; repeat for several.",
        ),
        click.option(
            "--namespace",
            default="toolkit",
            show_default=True,
            help="Image namespace in the registry.",
        ),
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
    for option in reversed(options):
        command = option(command)
    return command


def _push(
    catalog: Catalog,
    name: str,
    registries: tuple[str, ...],
    namespace: str,
    extra_tags: tuple[str, ...],
    latest: bool,
    username: str | None,
    password_stdin: bool,
) -> None:
    from toolkit import engine, registry

    if not registries:
        raise UsageError("name at least one --registry to push to.")
    auth = None
    if password_stdin:
        if not username:
            raise UsageError("--password-stdin needs --username (or TOOLKIT_REGISTRY_USERNAME).")
        auth = {"username": username, "password": sys.stdin.readline().strip()}
    config = catalog[name]
    tag_list = registry.tags(catalog, config, extra_tags, latest)
    for pushed in registry.push(
        catalog, config, list(registries), namespace, tag_list, auth, engine.stderr_progress
    ):
        click.echo(f"{pushed.ref}@{pushed.digest}")


@cli.command()
@click.argument("name")
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
@_push_options
@click.pass_context
def build(
    ctx: click.Context,
    name: str,
    no_cache: bool,
    ca_bundle: Path | None,
    pip_index_url: str | None,
    wheelhouse: Path | None,
    base_image: str | None,
    cache_from: tuple[str, ...],
    cache_to: tuple[str, ...],
    then_push: bool,
    registries: tuple[str, ...],
    namespace: str,
    extra_tags: tuple[str, ...],
    latest: bool,
    username: str | None,
    password_stdin: bool,
) -> None:
    """Build a config's image from its rendered Dockerfile, with OCI labels.

    The image is tagged toolkit/NAME:VERSION locally (VERSION: the backend's pinned version).

    \b
    Examples:
      toolkit build llama3-70b_4
      toolkit build flux.1-dev --ca-bundle /etc/ssl/certs/ca-certificates.crt
      toolkit build demo-image --wheelhouse ./wheels --base-image toolkit-local/python:3.11-bookworm
      toolkit build llama3-8b --push --registry ghcr.io --namespace my-org
    """
    from toolkit import engine

    catalog = _catalog(ctx)
    options = engine.BuildOptions(
        no_cache, ca_bundle, pip_index_url, wheelhouse, base_image, cache_from, cache_to
    )
    ref = engine.build(catalog, catalog[name], options)
    click.echo(f"built {ref}")
    if then_push:
        _push(catalog, name, registries, namespace, extra_tags, latest, username, password_stdin)


@cli.command()
@click.argument("name")
@_push_options
@click.pass_context
def push(
    ctx: click.Context,
    name: str,
    registries: tuple[str, ...],
    namespace: str,
    extra_tags: tuple[str, ...],
    latest: bool,
    username: str | None,
    password_stdin: bool,
) -> None:
    """Push a built image under its version, sha-<commit> and date tags; print each digest.

    \b
    Examples:
      toolkit push llama3-70b_4 --registry ghcr.io --namespace my-org
      echo "$TOKEN" | toolkit push flux.1-dev --registry ghcr.io --registry docker.io \\
          --namespace my-org --username me --password-stdin --latest
    """
    _push(_catalog(ctx), name, registries, namespace, extra_tags, latest, username, password_stdin)


@cli.command()
@click.argument("name")
@click.option("--gpus", metavar="IDS", help="GPU ids to use, comma-separated (default: 0..N-1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Host port (default: the config's).")
@click.option(
    "--bind",
    default="127.0.0.1",
    show_default=True,
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
@click.pass_context
def start(
    ctx: click.Context,
    name: str,
    gpus: str | None,
    port: int | None,
    bind: str,
    timeout: float | None,
    no_wait: bool,
    force: bool,
    api_key: str | None,
) -> None:
    """Start a config's service and wait until its model answers.

    \b
    Examples:
      toolkit start llama3-70b_4
      toolkit start llama3-70b_4 --gpus 4,5,6,7 --port 2042
      toolkit start demo-image --timeout 120
      TOOLKIT_API_KEY=... toolkit start llama3-8b --bind 0.0.0.0
    """
    from toolkit import engine

    catalog = _catalog(ctx)
    config = catalog[name]
    ids = [g.strip() for g in gpus.split(",") if g.strip()] if gpus is not None else None
    options = engine.StartOptions(ids, port, bind, timeout, not no_wait, force, api_key)
    began = time.monotonic()
    service = engine.start(catalog, config, options, engine.stderr_progress)
    if no_wait:
        click.echo(f"{name} started at {service.url}; not waiting for {config.model}.")
        return
    click.echo(
        f"{name} is ready at {service.url} after {time.monotonic() - began:.1f} s: "
        f"{config.model} answers."
    )
    click.echo(f"try: {_example_request(config.protocol.value, service.url, config.model)}")


def _example_request(protocol: str, url: str, model: str) -> str:
    """A curl command sending the seed's request, ready to paste."""
    import shlex

    from toolkit.protocols import IMAGE_PROMPT, PROMPT

    if protocol == "ollama-text":
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": PROMPT}],
            "stream": False,
        }
        path = "/api/chat"
    elif protocol == "openai-image":
        body = {"model": model, "prompt": IMAGE_PROMPT, "size": "512x512"}
        path = "/v1/images/generations"
    else:
        body = {"model": model, "messages": [{"role": "user", "content": PROMPT}]}
        path = "/v1/chat/completions"
    return (
        f"curl -s {url}{path} -H 'Content-Type: application/json' "
        f"-d {shlex.quote(json.dumps(body))}"
    )


@cli.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.pass_context
def status(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """Show running toolkit services: config, state, health, port, GPUs, uptime.

    \b
    Examples:
      toolkit status
      toolkit status llama3-70b_4 --json
    """
    from toolkit import engine

    if name:
        name = _catalog(ctx)[name].name
    rows = engine.status(name)
    if as_json:
        _echo_json(rows)
    elif rows:
        _table(rows, ["config", "model", "state", "health", "port", "gpus", "uptime_s"])
    else:
        click.echo(f"{name} is not running." if name else "no toolkit service is running.")


@cli.command()
@click.argument("name")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("--tail", default=100, show_default=True, help="Lines from the end to show.")
@click.pass_context
def logs(ctx: click.Context, name: str, follow: bool, tail: int) -> None:
    """Print a service's log lines.

    \b
    Examples:
      toolkit logs llama3-70b_4 --tail 20
      toolkit logs flux.1-dev -f
    """
    from toolkit import engine

    for chunk in engine.logs(_catalog(ctx)[name], follow, tail):
        click.echo(chunk, nl=False)


@cli.command()
@click.argument("name")
@click.option(
    "--volumes",
    is_flag=True,
    help="Also delete the shared model cache volume (every config's weights).",
)
@click.pass_context
def stop(ctx: click.Context, name: str, volumes: bool) -> None:
    """Stop a service and remove its containers and network; safe to repeat.

    \b
    Examples:
      toolkit stop llama3-70b_4
      toolkit stop flux.1-dev --volumes
    """
    from toolkit import engine

    config = _catalog(ctx)[name]
    if engine.stop(config, volumes):
        click.echo(f"stopped {name}" + (" and removed the model cache" if volumes else ""))
    else:
        click.echo(f"{name} is not running; nothing to stop.")


@cli.command()
@click.argument("name", required=False)
@click.option("--url", help="Probe this endpoint instead of a catalog service.")
@click.option(
    "--protocol",
    type=click.Choice(["openai-text", "ollama-text", "openai-image"]),
    help="The endpoint's protocol (with --url).",
)
@click.option("--model", help="The served model name (with --url).")
@click.option("--vision", is_flag=True, help="Also send an image in a chat (with --url).")
@click.option("--api-key", envvar="TOOLKIT_API_KEY", help="Bearer token, if the server has one.")
@click.option("--size", default="64x64", show_default=True, help="Image size for openai-image.")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds per request.")
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
    """Smoke-test a running model over its protocol; exit 0 pass, 1 fail, 2 usage.

    \b
    Examples:
      toolkit probe llama3-70b_4
      toolkit probe --url http://127.0.0.1:1042 --protocol openai-text --model Llama3-70B --json
    """
    from toolkit import protocols

    if name and (url or protocol or model):
        raise UsageError("give a config NAME or --url/--protocol/--model, not both.")
    if name:
        config = _catalog(ctx)[name]
        port = _service_port(config.name) or config.port
        url, protocol, model, vision = (
            f"http://127.0.0.1:{port}",
            config.protocol.value,
            config.model,
            config.vision,
        )
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


def service_endpoint(ctx: click.Context, name: str) -> tuple[str, Catalog, Any]:
    """The URL of a catalog service as probe finds it, with the catalog and its entry."""
    catalog = _catalog(ctx)
    config = catalog[name]
    return f"http://127.0.0.1:{_service_port(config.name) or config.port}", catalog, config


def _service_port(name: str) -> int | None:
    """The host port a running service of this config publishes, if the engine answers."""
    from toolkit import engine

    try:
        rows = engine.status(name)
    except ToolkitError:
        return None
    return int(rows[0]["port"]) if rows and rows[0]["port"] else None


@cli.command("ci-matrix")
@click.option(
    "--changed-since",
    metavar="REF",
    help="Only configs whose build inputs changed since this git commit.",
)
@click.pass_context
def ci_matrix(ctx: click.Context, changed_since: str | None) -> None:
    """Print the CI build matrix as JSON, one entry per config.

    \b
    Examples:
      toolkit ci-matrix
      toolkit ci-matrix --changed-since origin/main
    """
    from toolkit import ci

    click.echo(json.dumps(ci.matrix(_catalog(ctx), changed_since), sort_keys=True))


@cli.command("export")
@click.argument("name")
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
@click.pass_context
def export_(ctx: click.Context, name: str, bundle_path: Path, with_model: Path | None) -> None:
    """Write an air-gapped bundle: the image, the compose file, checksums, optionally weights.

    \b
    Examples:
      toolkit export flux.1-dev -o flux.bundle
      toolkit export demo-image -o demo.bundle --with-model .demo/models/tiny-diffusion
    """
    from toolkit import bundle

    catalog = _catalog(ctx)
    manifest = bundle.export(catalog, catalog[name], bundle_path, with_model)
    click.echo(f"wrote {bundle_path}: {manifest['image']} and {len(manifest['files'])} files")


@cli.command("import")
@click.argument("bundle_file", type=click.Path(path_type=Path))
@click.option(
    "--model-dir",
    type=click.Path(path_type=Path),
    help="Where to put carried model weights (default: ./<config>-model).",
)
def import_(bundle_file: Path, model_dir: Path | None) -> None:
    """Verify every checksum of a bundle, then load its image (and weights).

    \b
    Examples:
      toolkit import flux.bundle
      toolkit import demo.bundle --model-dir /srv/models/tiny-diffusion
    """
    from toolkit import bundle

    manifest = bundle.import_(bundle_file, model_dir)
    click.echo(
        f"loaded {manifest['image']}"
        + (f"; model in {manifest['model_dir']}" if "model_dir" in manifest else "")
    )


def _relative(path: Any) -> str:
    from toolkit.paths import REPO_ROOT

    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


from toolkit.bench.cli import bench  # noqa: E402  (light: Click only)

cli.add_command(bench)
