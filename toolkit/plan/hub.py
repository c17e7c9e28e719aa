"""A checkpoint's facts from the Hugging Face Hub (or a mirror at HF_ENDPOINT, or the cache with
HF_HUB_OFFLINE=1) for `toolkit add`: config.json, the safetensors headers (read by HTTP Range,
never the weights) and whether the repo is gated.

huggingface_hub retries a failed connection for about 24 s; one short request to the endpoint
first makes an unreachable Hub, and a repo it does not hold, one sentence at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError, UsageError
from toolkit.plan.facts import (
    HUB_TIMEOUT_S,
    Checkpoint,
    Tensors,
    checkpoint,
    local_checkpoint,
    model_info,
    offline,
)


def read(repo: str, revision: str | None) -> tuple[Checkpoint, bool]:
    """(the checkpoint's facts, whether the repo is gated)."""
    from huggingface_hub import constants

    if offline(constants.HF_HUB_OFFLINE):
        return _cached(repo, revision), False
    info = model_info(repo, revision, constants.ENDPOINT)
    from huggingface_hub import get_safetensors_metadata, hf_hub_download
    from huggingface_hub.errors import NotASafetensorsRepoError

    try:
        path = hf_hub_download(repo, "config.json", revision=revision, etag_timeout=HUB_TIMEOUT_S)
    except Exception as exc:
        raise ToolkitError(
            f"cannot download config.json of {repo} ({type(exc).__name__}); check that the "
            "repo holds a transformers model."
        ) from None
    config: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    tensors: Tensors = {}
    try:
        metadata = get_safetensors_metadata(repo, revision=revision)
    except NotASafetensorsRepoError:
        pass  # parameters are then estimated from config.json's shapes
    else:
        for file in metadata.files_metadata.values():
            tensors.update({k: (t.dtype, list(t.shape)) for k, t in file.tensors.items()})
    return checkpoint(config, tensors), bool(info.get("gated"))


def _cached(repo: str, revision: str | None) -> Checkpoint:
    """Offline: the snapshot in the local cache, or one sentence at once."""
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(repo, revision=revision, local_files_only=True)
    except Exception:
        raise UsageError(
            f"{repo} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 forbids the "
            "Hub; run without HF_HUB_OFFLINE, or add a local model folder."
        ) from None
    return local_checkpoint(Path(folder))
