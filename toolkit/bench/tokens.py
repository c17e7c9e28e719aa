"""The optional tokenizer cross-check of the server's `usage` counts.

`transformers` (or `tokenizers`) is not part of the base install, and neither is torch; the check
runs only when `--tokenizer DIR` is given and one of them is importable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from toolkit.errors import UsageError
from toolkit.protocols.measure import Result


def load(path: str) -> Callable[[str], int]:
    """A function counting the tokens of a text, from a local tokenizer directory."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise UsageError(
            "--tokenizer needs the transformers package; pip install transformers, "
            "or drop --tokenizer."
        ) from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot load a tokenizer from {path} ({type(exc).__name__}).") from None
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False))


def cross_check(results: list[Result], count: Callable[[str], int]) -> dict[str, Any]:
    """Re-tokenize the streamed text of each answer and compare with the server's usage count.

    Decoding then re-encoding is not always the identity (merges across chunk boundaries), so a
    small difference is reported, not treated as an error.
    """
    pairs = [(r.output_tokens, count(r.text)) for r in results if r.ok and r.output_tokens]
    differences = [abs(a - b) for a, b in pairs]
    return {
        "checked": len(pairs),
        "matches": sum(d == 0 for d in differences),
        "max_difference": max(differences, default=0),
        "usage_total": sum(a for a, _ in pairs),
        "tokenizer_total": sum(b for _, b in pairs),
    }
