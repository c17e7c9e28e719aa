"""What the protocol modules share without an HTTP client: the failure kinds and the prompts.

Each check returns a detail or raises ProbeError with one of four kinds, so a user can tell "not
reachable" from "the model is not listed" from "the server answered with an error" from "the
answer is malformed".
"""

from __future__ import annotations

import base64
from enum import StrEnum

from toolkit.errors import ToolkitError

PROMPT = "Hello!"
# A 2x2 red PNG, for the image-in-chat check of vision models.
TINY_PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a73"
        "0000001649444154789c63f8cfc0f09f8181e13f03c3ff0c0c0c00003bf405fb"
        "0b3e0ddc0000000049454e44ae426082"
    )
).decode()


class Failure(StrEnum):
    UNREACHABLE = "unreachable"
    NOT_LISTED = "not-listed"
    ERROR_STATUS = "error-status"
    MALFORMED = "malformed"


class ProbeError(ToolkitError):
    def __init__(self, kind: Failure, message: str) -> None:
        super().__init__(message)
        self.kind = kind
