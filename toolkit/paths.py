"""Where things are. Light on purpose: the fast paths of the CLI import this and nothing heavy."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILTIN_CATALOG = REPO_ROOT / "configs"
CATALOG_ENV = "TOOLKIT_CATALOG"
BACKENDS_FILE = "_backends.yaml"
