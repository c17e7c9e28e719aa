"""Render targets: what the catalog is rendered into, one module per target.

A target module has a `run(catalog, selected, options) -> str` that writes (or, with --check,
compares) its files and returns the line `toolkit render` prints. Adding a target is its module
and its templates (under toolkit/render/templates/), and its name here. Light on purpose: the
CLI lists the targets for `--target` without importing Jinja.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from toolkit.catalog.configs import Catalog

# Each target's name, its module under toolkit.render, and what it writes.
TARGETS = {
    "compose": "compose files and Dockerfiles",
    "kubernetes": "a kustomize directory per config",
}


@dataclass(frozen=True)
class Cluster:
    """The kubernetes target's placement, sizing and policy choices (none: derived defaults)."""

    cpu_request: str | None = None
    memory_request: str | None = None
    memory_limit: str | None = None
    tolerations: tuple[str, ...] = ()  # KEY[=VALUE]:EFFECT, added to the GPU taint's
    node_selector: tuple[str, ...] = ()  # KEY=VALUE
    runtime_class: str | None = None
    priority_class: str | None = None
    gpu_products: tuple[str, ...] = ()  # nvidia.com/gpu.product values, as GFD writes them
    shared_storage_class: str | None = None  # a ReadWriteMany class: one model copy per group
    api_from: tuple[str, ...] = ()  # namespaces admitted to the API port; "*": anywhere
    top_level: bool = False  # also write DIR/kustomization.yaml over every config folder
    autoscale_max: int | None = None  # a KEDA ScaledObject up to this many replicas
    prometheus: str | None = None  # the Prometheus KEDA queries

    def given(self) -> bool:
        return self != Cluster()


@dataclass(frozen=True)
class Options:
    """What `toolkit render` was asked; each target refuses what it does not take."""

    out: Path | None = None
    check: bool = False
    registry: str | None = None
    namespace: str | None = None
    tag: str | None = None
    ingress_host: str | None = None
    cluster: Cluster = field(default_factory=Cluster)


def run(target: str, catalog: Catalog, selected: list[str] | None, options: Options) -> str:
    module = importlib.import_module(f"toolkit.render.{target}")
    message: str = module.run(catalog, selected, options)
    return message
