"""The `toolkit` entry point.

The read-only commands run most, `list`, `show NAME` and `plan NAME` (each with or without
`--json`, and no other option), are answered here from the cache of toolkit.cli.cache without
importing Click or pydantic (most of their start-up time), and `status` straight from the
engine; everything else, and every cache miss, goes to the Click CLI, which prints the same.
"""

from __future__ import annotations

import sys

from toolkit.paths import user_catalog


def _fast(argv: list[str]) -> tuple[str, int] | None:
    """The output and exit code of a cached read-only command, or None."""
    option = None
    if len(argv) >= 2 and argv[0] == "--catalog":
        option, argv = argv[1], argv[2:]
    as_json = argv[-1:] == ["--json"]
    words = argv[:-1] if as_json else argv
    if words == ["status"]:
        from toolkit.errors import ToolkitError

        try:
            return _status(as_json), 0
        except ToolkitError:
            return None  # the CLI says what is wrong, in its one error style
    if not words or words[0] not in ("list", "show", "plan") or len(words) > 2:
        return None
    if (words[0] == "list") != (len(words) == 1) or words[-1].startswith("-"):
        return None
    from toolkit import output
    from toolkit.cli import cache as index

    answers = index.cached(user_catalog(option))
    if answers is None:
        return None
    command = words[0]
    if command == "list":
        rows = index.with_engine(answers["rows"])
        return (output.as_json(rows) if as_json else output.table(rows, output.LIST_COLUMNS)), 0
    entry = answers[command].get(words[1])
    if entry is None:
        return None  # unknown names, configs without facts: the CLI says why
    if command == "plan":
        return (entry["json"] if as_json else entry["text"]), 0 if entry["fits"] else 1
    disk = index.image_disk_gib(entry["image"])
    if as_json:
        return output.as_json(entry | {"image_disk_gib": disk}), 0
    return index.show_text(answers["show_yaml"][words[1]], disk), 0


def _status(as_json: bool) -> str:
    from toolkit import output
    from toolkit.observe.status import status

    rows = status()
    if as_json:
        return output.as_json(rows)
    return output.status_table(rows) if rows else "no toolkit service is running."


def main() -> None:
    fast = _fast(sys.argv[1:])
    if fast is not None:
        text, code = fast
        sys.stdout.write(text + "\n")
        sys.exit(code)
    from toolkit.cli.root import cli

    cli(prog_name="toolkit")


if __name__ == "__main__":
    main()
