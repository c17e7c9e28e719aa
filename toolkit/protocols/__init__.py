"""The API protocols a service speaks. Light on purpose: the CLI's option choices import it."""

from enum import StrEnum


class Protocol(StrEnum):
    OPENAI_TEXT = "openai-text"
    OLLAMA_TEXT = "ollama-text"
    OPENAI_IMAGE = "openai-image"


# Where each protocol lists its served models: a model is ready when its name is listed there.
LISTING = {
    Protocol.OPENAI_TEXT: "/v1/models",
    Protocol.OPENAI_IMAGE: "/v1/models",
    Protocol.OLLAMA_TEXT: "/api/tags",
}
