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

from toolkit.paths import data_root, state_dir


def _fingerprint(user_dir: str | None) -> str:
    digest = hashlib.sha256()
    dirs = [data_root() / "configs", Path(__file__).parent]
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


def cached_rows(user_dir: str | None) -> list[dict[str, Any]] | None:
    """The rows from the cache, or None when anything changed since they were stored."""
    try:
        rows: list[dict[str, Any]] = json.loads(_cache_file(user_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rows


def list_rows(user_dir: str | None) -> list[dict[str, Any]]:
    """The catalog's rows for `toolkit list`: cached, or loaded strictly and then cached."""
    rows = cached_rows(user_dir)
    if rows is not None:
        return rows
    from toolkit.catalog import Catalog

    catalog = Catalog.load(user_dir)
    catalog.check()
    rows = [
        {
            "name": c.name,
            "model": c.model,
            "protocol": c.protocol.value,
            "backend": c.backend,
            "gpus": c.gpus,
        }
        for c in catalog.values()
    ]
    _store(_cache_file(user_dir), rows)
    return rows


def _cache_file(user_dir: str | None) -> Path:
    return state_dir() / f"list-{_fingerprint(user_dir)}.json"


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
