"""What the command modules share: the catalog state, argument types, finding a running service.

Light at import (Click and the foundation only): `toolkit --help` loads every command module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from toolkit import output
from toolkit.errors import ToolkitError, UsageError
from toolkit.paths import user_catalog

if TYPE_CHECKING:
    from toolkit.catalog.configs import Catalog, Config
    from toolkit.lifecycle.running import Service


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


def complete_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of config names, from the cached catalog rows."""
    from toolkit.cli.cache import list_rows

    try:
        rows = list_rows(user_catalog(ctx.find_root().params.get("catalog_dir")))
    except ToolkitError:
        return []
    return [row["name"] for row in rows if row["name"].startswith(incomplete)]


def name_argument(required: bool = True) -> Callable[[Any], Any]:
    return click.argument("name", required=required, shell_complete=complete_names)


def echo_json(value: Any) -> None:
    click.echo(output.as_json(value))


def remember(state: State) -> None:
    """Store the read-only answers of a catalog that loaded cleanly, for the fast path."""
    from toolkit.cli import cache as index

    if not state.catalog.errors and index.cached(state.catalog_dir) is None:
        index.store(state.catalog_dir, state.catalog)


def gpu_ids(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None
    ids = [g.strip() for g in value.split(",") if g.strip()]
    bad = [g for g in ids if not g.isdigit()]
    if bad or not ids:
        raise click.BadParameter(
            f"'{value}' is not a list of GPU ids; write them like 0 or 4,5,6,7."
        )
    return ids


def address(ctx: click.Context, param: click.Parameter, value: str) -> str:
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


def image_size(value: str) -> str:
    import re

    match = re.fullmatch(r"([1-9][0-9]{0,4})x([1-9][0-9]{0,4})", value)
    if not match:
        raise click.BadParameter(f"'{value}' is not an image size; write it like 512x512.")
    return value


def service_of(state: State, name: str) -> Service | None:
    """The running service of this name, from its container's labels (so one started from
    another catalog is found too); None if it does not run. A name that neither runs nor is in
    the catalog is a usage error (exit 2), whether or not an engine answers."""
    from toolkit.host.engine import EngineError
    from toolkit.lifecycle import running

    known = name in state.catalog or name in state.catalog.errors
    try:
        service = running.running_service(name)
    except EngineError:
        if not known:
            state.config(name)  # "unknown config ..., did you mean"
        raise
    if service is None and not known:
        state.config(name)
    return service


def running_service(state: State, name: str) -> Service:
    """The running service of this name; one that does not run is an error."""
    from toolkit.lifecycle import running

    service = service_of(state, name)
    if service is None:
        raise ToolkitError(f"{name} is not running; start it with 'toolkit start {name}'.")
    now = running.state_of(name)
    if now != "running":
        raise ToolkitError(
            f"{name} is {now}, not running; its log says why: 'toolkit logs {name}'."
        )
    return service


@dataclass(frozen=True)
class Endpoint:
    """What `probe` and `bench` talk to: a catalog service by NAME, or --url/--protocol/--model."""

    url: str
    protocol: str
    model: str
    vision: bool = False
    service: Service | None = None  # the running service NAME named
    catalog: Catalog | None = None
    config: Config | None = None  # None where it was started from a catalog this one lacks


def endpoint(
    state: State,
    name: str | None,
    url: str | None,
    protocol: str | None,
    model: str | None,
    vision: bool = False,
) -> Endpoint:
    """The endpoint a NAME or the --url options name; both, or neither, is a usage error."""
    from toolkit.catalog.configs import CatalogError

    if name and (url or protocol or model):
        raise UsageError("give a config NAME or --url/--protocol/--model, not both.")
    if not name:
        if not (url and protocol and model):
            raise UsageError("give a config NAME, or all of --url, --protocol and --model.")
        return Endpoint(url.rstrip("/"), protocol, model, vision)
    service = running_service(state, name)
    try:
        config: Config | None = state.config(name)
    except CatalogError:
        config = None
    return Endpoint(
        service.url, service.protocol, service.model, service.vision, service, state.catalog, config
    )
