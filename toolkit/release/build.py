"""Building a config's image: stage its build context, hand in the secrets, run BuildKit.

Builds go through Compose v2's built-in BuildKit client, because the Docker SDK's build API knows
no BuildKit secrets and Debian 12 ships no buildx. The CA bundle and a pip.conf naming an index
mirror are build secrets, the wheelhouse a bind mount: none of them lands in a layer.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.catalog.configs import Catalog, Config
from toolkit.host.compose import compose_command
from toolkit.host.engine import EngineError, connect
from toolkit.release.git import git_or
from toolkit.render import compose as render
from toolkit.service.image import image_ref

DEFAULT_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class Built:
    ref: str
    image_id: str


@dataclass(frozen=True)
class BuildOptions:
    no_cache: bool = False
    ca_bundle: Path | None = None
    pip_index_url: str | None = None
    wheelhouse: Path | None = None
    base_image: str | None = None
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()


def build(catalog: Catalog, config: Config, options: BuildOptions) -> Built:
    """Build the config's image from a copy of its build context."""
    if options.ca_bundle is not None and not options.ca_bundle.is_file():
        raise EngineError(
            f"CA bundle {options.ca_bundle} is not a file; pass the PEM bundle "
            "your proxy's certificate is in (e.g. /etc/ssl/certs/ca-certificates.crt)."
        )
    if options.wheelhouse is not None and not options.wheelhouse.is_dir():
        raise EngineError(
            f"wheelhouse {options.wheelhouse} is not a directory; pass a folder of .whl files."
        )
    engine = connect()
    backend = catalog.backend(config)
    ref = image_ref(config, backend)
    with tempfile.TemporaryDirectory(prefix="toolkit-build-") as scratch:
        context = Path(scratch) / "context"
        render.stage_context(backend.context, context)
        (context / "Dockerfile").write_text(
            render.render_dockerfile(catalog, config), encoding="utf-8"
        )
        wheels = context / "wheelhouse"
        wheels.mkdir(exist_ok=True)
        if options.wheelhouse:
            for wheel in options.wheelhouse.glob("*.whl"):
                _link_or_copy(wheel, wheels / wheel.name)
        spec = _build_spec(config, ref, context, options, backend.pip_build)
        spec_file = Path(scratch) / "build.yaml"
        spec_file.write_text(render.to_yaml(spec), encoding="utf-8")
        args = ["--progress", "plain", "build"] + (["--no-cache"] if options.no_cache else [])
        returncode, last = _build_quietly(["-f", str(spec_file), *args])
    if returncode != 0:
        raise EngineError(f"building {ref} failed ({last}); the build output above says where.")
    record = engine.image_record(ref) or {}
    return Built(ref, str(record.get("Id", "")))


# Compose looks for buildx to build with Bake, and says so when it is missing; its own BuildKit
# client is the one meant here, so that line would only mislead.
_NOISE = ("buildx isn't installed",)


def _build_quietly(args: list[str]) -> tuple[int, str]:
    """Run the build, passing its output through as it comes, less Compose's Bake warning;
    Compose's exit code and the last line it wrote."""
    process = subprocess.Popen(
        [*compose_command(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    assert process.stdout is not None
    last = ""
    for line in process.stdout:
        if not any(noise in line for noise in _NOISE):
            sys.stderr.write(line)
            last = line.strip() or last
    returncode = process.wait()
    return returncode, last or f"exit {returncode}, no output"


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _build_spec(
    config: Config, ref: str, context: Path, options: BuildOptions, pip_build: bool
) -> dict[str, Any]:
    args: dict[str, str] = {}
    if options.base_image:
        args["BASE_IMAGE"] = options.base_image
    labels = {
        "org.opencontainers.image.created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "org.opencontainers.image.revision": git_or("unknown", "rev-parse", "HEAD"),
        "org.opencontainers.image.source": git_or("unknown", "remote", "get-url", "origin"),
    }
    build: dict[str, Any] = {
        "context": str(context),
        "dockerfile": "Dockerfile",
        "args": args,
        "labels": labels,
    }
    if options.cache_from:
        build["cache_from"] = list(options.cache_from)
    if options.cache_to:
        build["cache_to"] = list(options.cache_to)
    spec: dict[str, Any] = {
        "name": config.project + "-build",
        "services": {"model": {"image": ref, "build": build}},
    }
    if pip_build:
        bundle = options.ca_bundle or Path(os.environ.get("TOOLKIT_CA_BUNDLE", DEFAULT_CA_BUNDLE))
        if not bundle.is_file():  # no bundle: the secret is empty and pip trusts its own CAs
            bundle = Path(os.devnull)
        pip_config = context.parent / "pip.conf"  # outside the build context
        pip_config.write_text(
            f"[global]\nindex-url = {options.pip_index_url}\n" if options.pip_index_url else "",
            encoding="utf-8",
        )
        build["secrets"] = ["ca_bundle", "pip_config"]
        spec["secrets"] = {
            "ca_bundle": {"file": str(bundle)},
            "pip_config": {"file": str(pip_config)},
        }
    return spec
