"""The CI build matrix, computed from the catalog (never listed by hand).

A config's build inputs are its generated Dockerfile and the files of its backend's build context
(images/<backend>/ less the other configs' Dockerfiles and the template, whose effect shows in the
generated Dockerfiles, which `toolkit render --check` keeps in step with the catalog).

A config served from a Hugging Face repository names its config twin: the repository's config
files without the weights, at configs/twins/<owner>--<name>.json, on which CI runs a vLLM image's
own start-time checks without a GPU (scripts/vllm_twin_check.py).
"""

from __future__ import annotations

import subprocess
from typing import Any

from toolkit import render
from toolkit.catalog import REPO_ROOT, Catalog, Config
from toolkit.errors import UsageError


def entry(catalog: Catalog, config: Config) -> dict[str, Any]:
    return {
        "config": config.name,
        "backend": config.backend.value,
        "gpus": config.gpus,
        "version": catalog.backend(config).version,
        "image": render.image_ref(catalog, config),
        "dockerfile": str(render.dockerfile_path(config).relative_to(REPO_ROOT)),
        "context": f"images/{config.backend.value}",
        "twin": twin_path(config),
    }


def twin_path(config: Config) -> str | None:
    """Where the config twin of the config's Hugging Face repository lives, if it has one."""
    if not config.source.hf:
        return None
    return f"configs/twins/{config.source.hf.replace('/', '--')}.json"


def inputs_changed(config: Config, changed: set[str]) -> bool:
    prefix = f"images/{config.backend.value}/"
    own = str(render.dockerfile_path(config).relative_to(REPO_ROOT))
    for path in changed:
        if path == own:
            return True
        if path.startswith(prefix) and not path.endswith((".Dockerfile", ".j2")):
            return True
    return False


def changed_files(since: str) -> set[str]:
    """Files that differ between the commit `since` and the working tree."""
    check = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "--verify", "--quiet", f"{since}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0:
        raise UsageError(
            f"git revision '{since}' is not known here; fetch it (git fetch, or a "
            "deeper clone) or pass another --changed-since."
        )
    diff = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "diff", "--name-only", since, "--"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(diff.stdout.split())


def matrix(catalog: Catalog, changed_since: str | None = None) -> list[dict[str, Any]]:
    configs = list(catalog.values())
    if changed_since:
        changed = changed_files(changed_since)
        configs = [c for c in configs if inputs_changed(c, changed)]
    return [entry(catalog, c) for c in configs]
