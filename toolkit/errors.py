"""Domain errors. The library raises them; the CLI turns them into exit codes in one place."""


class ToolkitError(Exception):
    """A problem the user can fix; its message is one sentence saying what and how."""

    exit_code = 1


class UsageError(ToolkitError):
    """The command was called wrongly (exit status 2)."""

    exit_code = 2
