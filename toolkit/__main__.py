"""The `toolkit` entry point.

`toolkit list [--json]`, the command run most, is answered here without importing Click (about
half of the start-up time) when its rows are cached; everything else goes to the Click CLI.
"""

from __future__ import annotations

import os
import sys

from toolkit.paths import CATALOG_ENV


def _fast_list(argv: list[str]) -> str | None:
    """The output of `toolkit [--catalog DIR] list [--json]` from the cache, or None."""
    catalog = os.environ.get(CATALOG_ENV) or None
    if len(argv) >= 2 and argv[0] == "--catalog":
        catalog, argv = argv[1], argv[2:]
    if argv not in (["list"], ["list", "--json"]):
        return None
    from toolkit import index, output

    rows = index.cached_rows(catalog)
    if rows is None:
        return None
    return output.as_json(rows) if argv[-1] == "--json" else output.table(rows, output.LIST_COLUMNS)


def main() -> None:
    fast = _fast_list(sys.argv[1:])
    if fast is not None:
        sys.stdout.write(fast + "\n")
        return
    from toolkit.cli import cli

    cli(prog_name="toolkit")


if __name__ == "__main__":
    main()
