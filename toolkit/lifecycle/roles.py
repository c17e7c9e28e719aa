"""The roles of a multi-node config on Docker hosts: `toolkit start NAME --role head|worker`.

The head is the config's ordinary service (compose/NAME.yaml: checks, start, wait, probe and
status as on one host). A worker runs compose/NAME.worker.yaml on another host, pointed at the
head's address; it serves nothing itself, so starting it means its container is up and joining.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolkit.catalog import names
from toolkit.errors import ToolkitError, UsageError
from toolkit.host.compose import ComposeError, last_line, run_compose
from toolkit.host.engine import connect, not_built
from toolkit.paths import state_dir
from toolkit.render import compose as render
from toolkit.service.image import image_ref

if TYPE_CHECKING:
    from toolkit.catalog.configs import Catalog, Config

ROLES = ("head", "worker")


def check_role(config: Config, role: str | None, head_address: str | None) -> None:
    """Refuse a role where there is none to play, and a head address the role does not use."""
    if role is not None and config.nodes == 1:
        raise UsageError(f"--role is for configs that span hosts; {config.name} has nodes: 1.")
    if head_address is not None and role != "worker":
        raise UsageError("--head-address names the head a worker joins; add --role worker.")
    if role == "worker" and head_address is None:
        raise UsageError("--role worker needs --head-address HOST, the head host's address.")


def start_role(
    catalog: Catalog, config: Config, role: str | None, head_address: str | None
) -> str | None:
    """Check the role; a worker starts here (its container's name is returned), while the head,
    or a config of one host, is `start`'s to run (None)."""
    check_role(config, role, head_address)
    if role == "worker" and head_address is not None:
        return start_worker(catalog, config, head_address)
    return None


def worker_project(config: Config) -> str:
    return f"{config.project}-worker"


def start_worker(catalog: Catalog, config: Config, head_address: str, rank: int = 1) -> str:
    """`compose up -d` the worker file pointed at the head; the worker's container name."""
    backend = catalog.backend(config)
    engine = connect()
    ref = image_ref(config, backend)
    if not engine.image_exists(ref):
        raise not_built(ref, config.name)
    env = {"TOOLKIT_HEAD_ADDRESS": head_address, "TOOLKIT_NODE_RANK": str(rank)}
    env |= {f"TOOLKIT_GPU_{i}": str(i) for i in range(config.gpus)}
    if config.source.local:
        from toolkit.lifecycle.preflight import local_model_dir

        env["TOOLKIT_MODEL_DIR"] = str(local_model_dir(config))
    compose_file = state_dir() / "compose" / f"{config.name}.worker.yaml"
    compose_file.parent.mkdir(parents=True, exist_ok=True)
    compose_file.write_text(render.render_worker_compose(catalog, config), encoding="utf-8")
    result = run_compose(
        ["-p", worker_project(config), "up", "-d", "--no-build"],
        env=env,
        capture=True,
        project_file=compose_file,
    )
    found = engine.containers(label=[f"{names.label('worker')}={config.name}"])
    if result.returncode != 0 or not found:
        message = (
            f"docker compose up did not start the {config.name} worker ({last_line(result)}); "
        )
        try:
            stop_worker(config)
        except ComposeError as exc:
            raise ToolkitError(message + f"taking it down failed too ({exc}).") from None
        raise ToolkitError(message + "nothing was left running.")
    return found[0].name


def stop_worker(config: Config) -> None:
    """Take the worker's containers down (volumes stay: the model cache is shared)."""
    result = run_compose(["-p", worker_project(config), "down", "--timeout", "10"], capture=True)
    if result.returncode != 0:
        raise ComposeError(
            f"docker compose down failed for the {config.name} worker ({last_line(result)})"
        )
