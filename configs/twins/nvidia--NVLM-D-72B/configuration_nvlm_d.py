"""A stand-in for the checkpoint's remote configuration code, written for the twin check.

NVLM-D-72B ships its own configuration module (auto_map AutoConfig in config.json), which
--trust-remote-code makes transformers import from the model directory. This stand-in builds the
same shape (a vision config and a Qwen2 language config) so vLLM's checks can read it; it is
not the repository's code and holds no weights logic.
"""

from typing import Any

from transformers import PretrainedConfig, Qwen2Config


class NVLM_D_Config(PretrainedConfig):  # noqa: N801 - the name auto_map gives
    model_type = "NVLM_D"

    def __init__(
        self,
        vision_config: dict[str, Any] | None = None,
        llm_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.vision_config = PretrainedConfig(**(vision_config or {}))
        self.llm_config = Qwen2Config(**(llm_config or {}))
