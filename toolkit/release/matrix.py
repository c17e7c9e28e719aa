"""The CI build matrix, computed from the catalog (never listed by hand).

A config's build inputs are its generated Dockerfile and the files of its backend's build context
(images/<backend>/ as a build stages it, toolkit/render/compose.py in_context: less the other
configs' Dockerfiles and the template, whose effect shows in the generated Dockerfiles, which
`toolkit render --check` keeps in step with the catalog).

A config served from a Hugging Face repository names its config twin: the repository's config
files without the weights, at configs/twins/<owner>--<name>.json, on which CI runs a vLLM image's
own start-time checks without a GPU (scripts/vllm_twin_check.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from toolkit.catalog.configs import Catalog, Config
from toolkit.errors import UsageError
from toolkit.paths import data_root
from toolkit.release.git import GitError, git
from toolkit.render import compose as render
from toolkit.service.image import image_ref


def _dockerfile(catalog: Catalog, config: Config) -> str:
    return str(render.dockerfile_path(catalog, config).relative_to(data_root()))


def entry(catalog: Catalog, config: Config) -> dict[str, Any]:
    backend = catalog.backend(config)
    return {
        "config": config.name,
        "backend": config.backend,
        "gpus": config.gpus,
        "version": backend.version,
        "image": image_ref(config, backend),
        "dockerfile": _dockerfile(catalog, config),
        "context": f"images/{backend.context}",
        "twin": twin_path(config),
    }


def twin_path(config: Config) -> str | None:
    """Where the config twin of the config's Hugging Face repository lives, if it has one."""
    if not config.source.hf:
        return None
    return f"configs/twins/{config.source.hf.replace('/', '--')}.json"


def inputs_changed(catalog: Catalog, config: Config, changed: set[str]) -> bool:
    prefix = f"images/{catalog.backend(config).context}/"
    own = _dockerfile(catalog, config)
    for path in changed:
        if path == own:
            return True
        if path.startswith(prefix) and render.in_context(Path(path.removeprefix(prefix))):
            return True
    return False


def changed_files(since: str) -> set[str]:
    """Files that differ between the commit `since` and the working tree."""
    try:
        git("rev-parse", "--verify", "--quiet", f"{since}^{{commit}}")
    except GitError:
        raise UsageError(
            f"git revision '{since}' is not known here; fetch it (git fetch, or a "
            "deeper clone) or pass another --changed-since."
        ) from None
    return set(git("diff", "--name-only", since, "--").split())


def matrix(catalog: Catalog, changed_since: str | None = None) -> list[dict[str, Any]]:
    catalog.check()
    configs = list(catalog.values())
    if changed_since:
        changed = changed_files(changed_since)
        configs = [c for c in configs if inputs_changed(catalog, c, changed)]
    return [entry(catalog, c) for c in configs]
