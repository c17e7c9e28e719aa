"""Commands that make and ship images: `build`, `push`, `export`, `import`."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from toolkit.cli.common import (
    State,
    echo_json,
    name_argument,
    pass_state,
)
from toolkit.errors import UsageError

if TYPE_CHECKING:
    from toolkit.release.registry import PushOptions


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
    from toolkit.lifecycle.start import stderr_progress
    from toolkit.release import registry

    if not options.registries:
        raise UsageError("name at least one --registry to push to.")
    pushed = registry.push(state.catalog, state.config(name), options, stderr_progress)
    return [{"ref": p.ref, "digest": p.digest} for p in pushed]


@click.command()
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
        echo_json({"image": built.ref, "id": built.image_id, "pushed": pushed})
        return
    click.echo(f"built {built.ref} ({built.image_id[:19]})")
    for entry in pushed:
        click.echo(f"{entry['ref']}@{entry['digest']}")


@click.command()
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
        echo_json(pushed)
    else:
        for entry in pushed:
            click.echo(f"{entry['ref']}@{entry['digest']}")


@click.command("export")
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


@click.command("import")
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
