"""Where things are. Light on purpose: the fast paths of the CLI import this and nothing heavy.

From a checkout, the catalog (configs/), the build contexts (images/) and the generated files
live beside the package, in the repository. An installed wheel carries configs/ and images/ in
the package's `_data` folder instead; see pyproject.toml.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CATALOG_ENV = "TOOLKIT_CATALOG"
BACKENDS_FILE = "_backends.yaml"


@functools.cache
def data_root() -> Path:
    """The folder holding configs/ and images/: the repository, or the installed package's data."""
    checkout = PACKAGE_DIR.parent
    if (checkout / "configs" / BACKENDS_FILE).is_file():
        return checkout
    return PACKAGE_DIR / "_data"


def is_checkout() -> bool:
    """Whether the toolkit runs from a clone of its repository (not an installed wheel)."""
    return data_root() == PACKAGE_DIR.parent


def user_catalog(option: str | None = None) -> str | None:
    """The user's catalog directory: the --catalog option, else TOOLKIT_CATALOG, else none."""
    return option or os.environ.get(CATALOG_ENV) or None


def state_dir() -> Path:
    """The toolkit's own cache: list rows, rendered compose files of running services."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "model-serving-toolkit"


# The repository, for the tests and benchmarks that run from a checkout; the toolkit itself
# asks data_root(), which also works when installed.
REPO_ROOT = PACKAGE_DIR.parent
