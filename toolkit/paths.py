"""Where things are. Light on purpose: the fast paths of the CLI import this and nothing heavy."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILTIN_CATALOG = REPO_ROOT / "configs"
CATALOG_ENV = "TOOLKIT_CATALOG"
BACKENDS_FILE = "_backends.yaml"


def state_dir() -> Path:
    """The toolkit's own cache: list rows, rendered compose files of running services, tokens."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "model-serving-toolkit"
