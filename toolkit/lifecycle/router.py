"""Starting replicas: how many a start asks for, and the router's image.

What the replicas and their router are in the compose project is toolkit/service/replicas.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolkit.errors import UsageError

if TYPE_CHECKING:
    from toolkit.catalog.configs import Config


def count(config: Config, asked: int | None) -> int:
    """How many replicas to run: --replicas, else the config's; one sentence where the config
    cannot have more than one."""
    replicas = asked or config.replicas
    refusal = config.why_one_replica() if replicas > 1 else None
    if refusal:
        raise UsageError(
            f"{config.name} cannot run {replicas} replicas: {refusal}; start it without --replicas."
        )
    return replicas


def ensure_image() -> None:
    """Build the router image once (toolkit/lifecycle/sidecar.py)."""
    from toolkit.lifecycle import sidecar
    from toolkit.service.replicas import IMAGE

    sidecar.ensure_image(IMAGE, "router")
