"""A cache of `toolkit list`'s rows, so listing skips YAML parsing and pydantic on a warm start.

The cache key is a fingerprint of every catalog file (path, size, modification time) and the
toolkit's own source, so any edit to a config or to the code misses the cache and reloads strictly.
Only a catalog that loaded without error is cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from toolkit.paths import BUILTIN_CATALOG

ROW_KEYS = ("name", "model", "protocol", "backend", "gpus")


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "model-serving-toolkit"


def _fingerprint(user_dir: str | None) -> str:
    digest = hashlib.sha256()
    dirs = [BUILTIN_CATALOG, Path(__file__).parent]
    if user_dir:
        dirs.append(Path(user_dir))
    for directory in dirs:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            digest.update(f"missing:{directory}".encode())
            continue
        for entry in entries:
            if entry.is_file():
                stat = entry.stat()
                digest.update(f"{entry.path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def list_rows(user_dir: str | None) -> list[dict[str, Any]]:
    """The catalog's rows for `toolkit list`, from the cache when nothing changed."""
    cache = _cache_dir() / f"list-{_fingerprint(user_dir)}.json"
    try:
        rows: list[dict[str, Any]] = json.loads(cache.read_text(encoding="utf-8"))
        return rows
    except (OSError, ValueError):
        pass
    from toolkit.catalog import Catalog

    catalog = Catalog.load(user_dir)
    rows = [
        {key: getattr(c, key) if key != "gpus" else c.gpus for key in ROW_KEYS}
        for c in catalog.values()
    ]
    rows = [{k: (v.value if hasattr(v, "value") else v) for k, v in r.items()} for r in rows]
    _store(cache, rows)
    return rows


def _store(cache: Path, rows: list[dict[str, Any]]) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        for old in cache.parent.glob("list-*.json"):
            old.unlink(missing_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=cache.parent, delete=False, encoding="utf-8"
        ) as tmp:
            json.dump(rows, tmp)
        os.replace(tmp.name, cache)
    except OSError:
        pass  # a read-only home only costs speed
