"""The API protocols a service speaks. Light on purpose: the CLI's option choices import it."""

from enum import StrEnum


class Protocol(StrEnum):
    OPENAI_TEXT = "openai-text"
    OLLAMA_TEXT = "ollama-text"
    OPENAI_IMAGE = "openai-image"
