"""Push built images to registries under a tag scheme that never moves under a user.

Tags for one push (docker-stacks' scheme):
- the backend version (`v0.33.0`, `0.42.1`): the image `toolkit build` made;
- `sha-<12 hex>`: the repository commit it was built from;
- `<YYYYMMDD>`: the UTC date of the push;
- `latest`: only when asked for (`--latest`);
- any `--tag` given.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from toolkit.catalog import names
from toolkit.catalog.configs import Catalog, Config
from toolkit.host.engine import EngineError, sdk_client, sdk_image
from toolkit.release.git import git_or
from toolkit.service.image import image_ref

ATTEMPTS = 3
AUTH_WORDS = ("unauthorized", "authentication required", "denied", "no basic auth")
UNREACHABLE_WORDS = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "server gave http",
    "dial tcp",
    "name or service not known",
)


@dataclass(frozen=True)
class PushOptions:
    """Where and how `push` (and `build --push`) pushes."""

    registries: tuple[str, ...]
    namespace: str = "toolkit"
    extra_tags: tuple[str, ...] = ()
    latest: bool = False
    auth: dict[str, str] | None = None


@dataclass(frozen=True)
class Pushed:
    ref: str
    digest: str


def tags(
    catalog: Catalog,
    config: Config,
    extra: tuple[str, ...] = (),
    latest: bool = False,
    today: dt.date | None = None,
) -> list[str]:
    """The tags one push gives an image, in a fixed order, without duplicates."""
    day = today or dt.datetime.now(dt.UTC).date()
    result = [catalog.backend(config).version]
    commit = git_or("", "rev-parse", "HEAD")
    if commit:
        result.append(f"sha-{commit[:12]}")
    result.append(day.strftime("%Y%m%d"))
    result.extend(extra)
    if latest:
        result.append("latest")
    return list(dict.fromkeys(result))


def push(
    catalog: Catalog,
    config: Config,
    options: PushOptions,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Pushed]:
    """Tag the built image for every registry and tag, push each, return refs with digests."""
    engine = sdk_client()
    image = sdk_image(engine, image_ref(config, catalog.backend(config)), config.name)
    auth = options.auth
    tag_list = tags(catalog, config, options.extra_tags, options.latest)
    pushed = []
    for registry in options.registries:
        target = names.repository(registry, options.namespace, config.name)
        for tag in tag_list:
            image.tag(target, tag)
            try:
                digest = _push_with_retries(engine, target, tag, registry, auth, progress)
            except EngineError:
                engine.images.remove(f"{target}:{tag}", noprune=True)  # the tag only
                raise
            pushed.append(Pushed(f"{target}:{tag}", digest))
            names.record_pushed({f"{target}:{tag}": digest})
    return pushed


def _push_with_retries(
    engine: Any,
    repository: str,
    tag: str,
    registry: str,
    auth: dict[str, str] | None,
    progress: Callable[[str], None],
) -> str:
    for attempt in range(1, ATTEMPTS + 1):
        error = ""
        digest = ""
        try:
            for event in engine.api.push(
                repository, tag, stream=True, decode=True, auth_config=auth
            ):
                error = event.get("error") or error
                digest = (event.get("aux") or {}).get("Digest") or digest
        except Exception as exc:  # the engine refused the request itself
            error = str(exc)
        if not error and digest:
            return str(digest)
        lowered = error.lower()
        if any(word in lowered for word in AUTH_WORDS):
            raise EngineError(
                f"registry {registry} refused the credentials for {repository}; "
                "log in with 'docker login " + registry + "' or pass --username "
                "and --password-stdin."
            )
        if any(word in lowered for word in UNREACHABLE_WORDS):
            raise EngineError(
                f"registry {registry} is not reachable ({error.strip()[:120]}); "
                "check its address and that it serves the registry API."
            )
        if attempt < ATTEMPTS:
            progress(
                f"push of {repository}:{tag} failed ({error.strip()[:120]}); "
                f"retrying ({attempt}/{ATTEMPTS - 1})"
            )
            time.sleep(2**attempt)
    raise EngineError(
        f"pushing {repository}:{tag} failed {ATTEMPTS} times ({error.strip()[:200]}); "
        "try again later."
    )
