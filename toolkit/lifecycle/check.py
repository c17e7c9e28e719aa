"""`toolkit check NAME`: the server's own start-time checks on the config twin, before any download.

A config twin is the checkpoint's published config.json without the weights: beside the config
file in `twins/<owner>--<name>.json` (or a folder of that name, for a checkpoint that ships its
configuration code), as configs/twins/ holds them and `toolkit add` writes them; for a local
model, its own config.json. The backend descriptor's `check:` command runs in a one-off container
of the config's built image, with no network and no GPU: for vLLM, scripts/vllm_twin_check.py,
which parses the config's command line with the image's own vLLM and runs its model, parallel and
load checks. The memory profile and the weights need a GPU host; `toolkit plan` prices memory.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any, NamedTuple

from toolkit.catalog import names
from toolkit.catalog.configs import Catalog, Config
from toolkit.errors import ToolkitError, UsageError
from toolkit.host.engine import EngineError, sdk_client, sdk_image
from toolkit.lifecycle.preflight import local_model_dir
from toolkit.paths import data_root
from toolkit.service.image import image_ref
from toolkit.service.server import server_command

SCRIPT = "scripts/vllm_twin_check.py"  # under data_root(): the checkout or the installed data
TWIN_MOUNT = "/twin"
TIMEOUT = 300.0  # vLLM's import and its checks take 20 to 60 s on two CPU cores


class CheckError(ToolkitError):
    """The server refuses the config as it would at start."""


class Checked(NamedTuple):
    twin: Path
    image: str
    summary: str  # the check's own line: architecture, quantization, dtype, length, parallel size


def twin_path(catalog: Catalog, config: Config) -> Path | None:
    """The config twin beside the config's file; for a local model, else its own config.json."""
    twin = catalog.twin(config)
    if twin is None and config.source.local:
        own = local_model_dir(config) / "config.json"
        return own if own.is_file() else None
    return twin


def check(catalog: Catalog, config: Config, timeout: float = TIMEOUT) -> Checked:
    """Run the backend's start-time checks in the config's image; raise the server's refusal."""
    backend = catalog.backend(config)
    if backend.check is None:
        raise UsageError(
            f"{config.name} runs {config.backend}, which has no start-time check to run without "
            "a GPU; toolkit check runs vLLM's own checks, for vLLM configs."
        )
    twin = twin_path(catalog, config)
    if twin is None:
        where = catalog.sources[config.name].parent / "twins"
        raise UsageError(
            f"{config.name} has no config twin in {where}; put the checkpoint's config.json "
            "there as <owner>--<name>.json (toolkit add keeps one), then check again."
        )
    image = image_ref(config, backend)
    client = sdk_client()
    sdk_image(client, image, config.name)  # the sentence to build it first
    script = (data_root() / SCRIPT).read_text(encoding="utf-8")
    mount = TWIN_MOUNT if twin.is_dir() else f"{TWIN_MOUNT}/config.json"
    values = {"script": script, "twin": mount}
    command = [word.format_map(values) for word in backend.check]
    command += server_command(config, backend)
    code, output = _run(client, image, command, twin, mount, config, backend.run_as_uid, timeout)
    last = output.strip().splitlines()[-1] if output.strip() else ""
    if code == 0 and last.startswith("ok: "):
        return Checked(twin, image, last.removeprefix("ok: "))
    if last.startswith("vLLM refuses "):
        raise CheckError(
            f"{config.name}: {last.rstrip('.')}; change the config (engine_args, gpus or the "
            f"source), then run 'toolkit check {config.name}' again."
        )
    raise EngineError(
        f"the check of {config.name} in {image} ended with exit status {code} before vLLM "
        f"answered ({last or 'no output'}); run it again, or report it with 'toolkit logs'."
    )


def _run(
    client: Any,
    image: str,
    command: list[str],
    twin: Path,
    mount: str,
    config: Config,
    user: int | None,
    timeout: float,
) -> tuple[int, str]:
    """One confined container: no network, no capabilities, the server's user; removed after."""
    import docker.errors
    import requests.exceptions

    try:
        container = client.containers.run(
            image,
            entrypoint=command,
            environment={"HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"},
            volumes={str(twin.resolve()): {"bind": mount, "mode": "ro"}},
            network_mode="none",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            user=str(user) if user is not None else None,
            labels={names.label("check"): config.name},
            name=f"{names.project(config.name)}-check-{uuid.uuid4().hex[:6]}",
            detach=True,
        )
    except docker.errors.DockerException as exc:
        raise EngineError(
            f"the engine could not start the check of {config.name} ({exc}); check "
            "'docker info', then run 'toolkit check' again."
        ) from None
    try:
        try:
            code = int(container.wait(timeout=timeout).get("StatusCode", 1))
        except requests.exceptions.RequestException:  # ReadTimeout, or the connection lost
            raise EngineError(
                f"the check of {config.name} took longer than {timeout:.0f} s; run it again "
                "on a less busy host."
            ) from None
        return code, container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
    finally:
        with contextlib.suppress(Exception):  # already gone
            container.remove(force=True)
