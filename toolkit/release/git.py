"""The one place the toolkit asks git: image labels (revision, source) and the CI matrix."""

from __future__ import annotations

import subprocess

from toolkit.paths import data_root


class GitError(Exception):
    """git is missing, or a git command failed."""


def git(*args: str) -> str:
    """`git ARGS` in the toolkit's data root; its stripped output, or GitError."""
    try:
        result = subprocess.run(
            ["git", "-C", str(data_root()), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(str(exc)) from None
    if result.returncode != 0:
        raise GitError(result.stderr.strip())
    return result.stdout.strip()


def git_or(default: str, *args: str) -> str:
    """`git ARGS`, or the default when there is no git, no repository, or no answer."""
    try:
        return git(*args) or default
    except GitError:
        return default
