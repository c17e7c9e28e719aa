"""`toolkit version`: the toolkit, the engine and Compose it drives, and each backend's pin."""

from __future__ import annotations

from importlib.metadata import version as package_version

from toolkit.catalog.configs import Catalog
from toolkit.errors import ToolkitError
from toolkit.host.compose import compose_version
from toolkit.host.engine import Engine


def versions(catalog: Catalog) -> list[dict[str, str]]:
    """A row per component; an engine or Compose that does not answer says so, never fails."""
    rows = [{"component": "toolkit", "version": package_version("model-serving-toolkit")}]
    try:
        engine = Engine().version()
    except ToolkitError:
        engine = "not reachable"
    rows.append({"component": "docker engine", "version": engine})
    rows.append({"component": "docker compose", "version": compose_version() or "not found"})
    for backend in catalog.backends.values():
        rows.append(
            {
                "component": f"backend {backend.name}",
                "version": f"{backend.version} ({backend.base})",
            }
        )
    return rows
