"""The Hugging Face token of a gated model: found once, handed over as a file, never a variable.

Compose mounts the handed-over file as a secret; `pull`'s one-off container mounts its own copy.
`stop` and every failed start remove what was handed over.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.host.engine import EngineError
from toolkit.paths import state_dir

if TYPE_CHECKING:
    from toolkit.catalog.configs import Config

TOKEN_FILE_DEFAULT = Path.home() / ".cache" / "huggingface" / "token"


def token_source(config: Config) -> Path | None:
    """The user's Hugging Face token file for a gated model, or None when none is needed or
    HF_TOKEN holds it; start hands either over as a file of its own (hand_over_token)."""
    if not config.gated:
        return None
    path = Path(os.environ.get("HF_TOKEN_FILE") or TOKEN_FILE_DEFAULT).expanduser()
    if path.is_file() and path.read_text(encoding="utf-8").strip():
        return path
    if os.environ.get("HF_TOKEN"):
        return None
    raise EngineError(
        f"{config.model} is gated and no Hugging Face token was found; put your token in "
        f"{TOKEN_FILE_DEFAULT} (huggingface-cli login), or set HF_TOKEN_FILE or HF_TOKEN."
    )


def hand_over_token(name: str, source: Path | None) -> Path:
    """The token (from its file, else HF_TOKEN) as the file the compose secret mounts; never a
    variable. Compose mounts the file with its host mode and the server runs as a non-root uid,
    so it is readable by all (0644), inside a folder only root can enter (0700). stop removes it."""
    token = source.read_text(encoding="utf-8").strip() if source else os.environ["HF_TOKEN"]
    path = handed_token(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token)
    os.chmod(path, 0o644)
    return path


def handed_token(name: str) -> Path:
    return state_dir() / "secrets" / f"{name}.hf_token"
