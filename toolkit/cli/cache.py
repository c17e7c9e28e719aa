"""A cache of what the read-only commands print, so they skip YAML parsing and pydantic.

`list`, `show NAME` and `plan NAME` (with no other options) depend on the catalog alone, so their
answers are computed together once and stored under the state directory. The cache key is a
fingerprint of every catalog file (path, size, modification time) and the toolkit's own source,
so any edit to a config or to the code misses the cache and reloads strictly. Only a catalog that
loaded without error is cached.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

from toolkit.paths import data_root, state_dir

# typing's own import costs the fast path a few milliseconds; mypy reads this name as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from toolkit.catalog.configs import Catalog, Config


def _fingerprint(user_dir: str | None) -> str:
    """Two 32-bit checksums of every entry's path, size and modification time (zlib's, as
    hashlib's import would cost the fast path more than the whole lookup)."""
    lines = []
    catalogs = [data_root() / "configs", *([Path(user_dir)] if user_dir else [])]
    # the twins beside the configs give their facts (toolkit/catalog/twins.py)
    dirs = [*catalogs, *(c / "twins" for c in catalogs), *_source_dirs()]
    for directory in dirs:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            lines.append(f"missing:{directory}")
            continue
        for entry in entries:  # every entry: a new directory or broken link misses the cache
            stat = entry.stat() if entry.is_file() else None
            size, mtime = (stat.st_size, stat.st_mtime_ns) if stat else (-1, -1)
            lines.append(f"{entry.path}\0{size}\0{mtime}")
    data = "\n".join(lines).encode()
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def _source_dirs() -> list[Path]:
    """The toolkit's package and its subpackages: an edit to any module misses the cache."""
    package = Path(__file__).resolve().parent.parent
    return [
        package,
        *(Path(e.path) for e in os.scandir(package) if e.is_dir() and e.name[0] != "_"),
    ]


def cached(user_dir: str | None) -> dict[str, Any] | None:
    """The stored answers, or None when anything changed since they were stored."""
    try:
        answers: dict[str, Any] = json.loads(_cache_file(user_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return answers


def list_rows(user_dir: str | None) -> list[dict[str, Any]]:
    """The catalog's rows for `toolkit list`: cached, or loaded strictly and then cached."""
    answers = cached(user_dir)
    if answers is None:
        from toolkit.catalog.configs import Catalog

        catalog = Catalog.load(user_dir)
        catalog.check()
        answers = store(user_dir, catalog)
    rows: list[dict[str, Any]] = answers["rows"]
    return rows


def show_data(catalog: Catalog, name: str) -> dict[str, Any]:
    """One config as `toolkit show` prints it: the name first, the image it builds, its file
    (and the built-in one it replaces, if any), and how much the first start downloads."""
    from toolkit.plan import memory as plan
    from toolkit.service.image import image_ref

    config = catalog[name]
    backend = catalog.backend(config)
    data: dict[str, Any] = config.model_dump(mode="json")
    data["image"] = image_ref(config, backend)
    data["backend_base_image"] = backend.base
    if config.info and not config.source.local:
        data["download_gib"] = round(plan.weights_gib(config.info), 1)
    data["facts_from"] = facts_from(catalog, config)
    data["file"] = str(catalog.sources[config.name])
    builtin = data_root() / "configs" / f"{config.name}.yaml"
    if catalog.sources[config.name] != builtin and builtin.is_file():
        data["overrides"] = f"configs/{config.name}.yaml"
    return data


def facts_from(catalog: Catalog, config: Config) -> dict[str, list[str]] | None:
    """Which model facts the twin gave and which the info: block, by the twin's path and
    'info'; None for a config with no facts to plan with."""
    if config.info is None:
        return None
    from toolkit.catalog import twins

    twin = catalog.twin(config)
    said = list(twins.facts(twins.read(twin))) if twin else []
    written = [k for k in config.info.model_fields_set if k not in said]
    found = {"info": sorted(written, key=list(type(config.info).model_fields).index)}
    return ({_shown(twin): said} if twin else {}) | found


def _shown(path: Path) -> str:
    """A path under the checkout as it is written there, configs/twins/...; else whole."""
    return str(path.relative_to(data_root())) if path.is_relative_to(data_root()) else str(path)


def with_engine(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`list`'s rows with what the engine holds: whether the image is built, and the port the
    service runs on (false: not running); both null where no engine answers."""
    from toolkit.host.quick import view

    seen = view()
    return [
        row
        | {
            "built": None if seen is None else row["image"] in seen.images,
            "running": None if seen is None else seen.running.get(row["name"], False),
        }
        for row in rows
    ]


def image_disk_gib(image: str) -> float | None:
    """The disk `show`'s image takes, where the engine holds it."""
    from toolkit.host.quick import image_size

    size = image_size(image)
    return None if size is None else round(size / 2**30, 2)


def show_yaml(data: dict[str, Any]) -> str:
    """`show`'s text of what the catalog alone says (the cache keeps it, so the fast path needs
    no YAML library); show_text adds the engine's figure as its last line."""
    import yaml

    text: str = yaml.safe_dump(data, sort_keys=False)
    return text


def show_text(static: str, disk_gib: float | None) -> str:
    """The whole text: the catalog's part, then image_disk_gib as YAML writes a float or null."""
    return static + f"image_disk_gib: {'null' if disk_gib is None else repr(disk_gib)}"


def plan_answer(catalog: Catalog, name: str) -> dict[str, Any]:
    """`toolkit plan NAME` with the defaults: its text, its JSON and whether it fits."""
    from toolkit.plan import memory as plan

    config = catalog[name]
    result = plan.plan(config, catalog.backend(config))
    return {
        "text": plan.describe(result),
        "json": json.dumps(result.as_dict(), sort_keys=True),
        "fits": result.fits,
    }


def rows_of(catalog: Catalog) -> list[dict[str, Any]]:
    """`list`'s rows of the configs that loaded."""
    from toolkit.service.image import image_ref

    return [
        {
            "name": c.name,
            "model": c.model,
            "protocol": c.protocol.value,
            "backend": c.backend,
            "gpus": c.gpus,
            "image": image_ref(c, catalog.backend(c)),
        }
        for c in catalog.values()
    ]


def store(user_dir: str | None, catalog: Catalog) -> dict[str, Any]:
    """Compute every cached answer of a catalog that loaded without error, and store them."""
    answers: dict[str, Any] = {
        "rows": rows_of(catalog),
        "show": {name: show_data(catalog, name) for name in catalog},
        "show_yaml": {name: show_yaml(show_data(catalog, name)) for name in catalog},
        "plan": {name: plan_answer(catalog, name) for name in catalog if catalog[name].info},
    }
    _write(_cache_file(user_dir), answers)
    return answers


def _cache_file(user_dir: str | None) -> Path:
    return state_dir() / f"catalog-{_fingerprint(user_dir)}.json"


def _write(cache: Path, answers: dict[str, Any]) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        for old in cache.parent.glob("catalog-*.json"):
            old.unlink(missing_ok=True)
        import tempfile

        with tempfile.NamedTemporaryFile(
            "w", dir=cache.parent, delete=False, encoding="utf-8"
        ) as tmp:
            json.dump(answers, tmp)
        os.replace(tmp.name, cache)
    except OSError:
        pass  # a read-only home only costs speed
