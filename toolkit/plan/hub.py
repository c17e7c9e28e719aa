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
from toolkit.plan.facts import Checkpoint, Tensors, checkpoint, local_checkpoint

TIMEOUT_S = 5.0


def read(repo: str, revision: str | None) -> tuple[Checkpoint, bool]:
    """(the checkpoint's facts, whether the repo is gated)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return _cached(repo, revision), False
    info = _model_info(repo, revision, constants.ENDPOINT)
    from huggingface_hub import get_safetensors_metadata, hf_hub_download
    from huggingface_hub.errors import NotASafetensorsRepoError

    try:
        path = hf_hub_download(repo, "config.json", revision=revision, etag_timeout=TIMEOUT_S)
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


def _model_info(repo: str, revision: str | None, endpoint: str) -> dict[str, Any]:
    """The Hub's model info, in one request without retries; refusals as one sentence."""
    import httpx

    url = f"{endpoint.rstrip('/')}/api/models/{repo}/revision/{revision or 'main'}"
    from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

    try:
        response = httpx.get(url, headers=build_hf_headers(), timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise ToolkitError(
            f"cannot reach the Hugging Face Hub at {endpoint} ({type(exc).__name__}); check "
            "the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to read the local cache."
        ) from None
    if response.status_code in (401, 403, 404):  # the Hub answers 401 for a missing repo too
        at = f" at revision {revision}" if revision else ""
        raise UsageError(
            f"{repo}{at} is not a model on {endpoint} that this client may read; check the "
            "name (org/name[@revision]), or set HF_TOKEN for a private or gated repo."
        )
    if response.status_code != 200:
        raise ToolkitError(
            f"the Hub at {endpoint} answered {response.status_code} for {repo}; try again later."
        )
    data: dict[str, Any] = response.json()
    return data


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
