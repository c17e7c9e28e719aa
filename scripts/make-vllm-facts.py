"""Write what the pinned vLLM accepts, read from vLLM itself: configs/vllm-facts.json.

    VLLM_TARGET_DEVICE=cpu .venv-vllm/bin/python scripts/make-vllm-facts.py [FILE]

Run it with the parser venv's Python (scripts/make-vllm-parser-venv.sh, `make vllm-parser`), the
pinned vLLM installed without its GPU dependencies. It records:

  server, version         "vLLM" and its own version string
  options                 every long option of `vllm serve`, without its leading `--`
  no_value_options        those that take no value (store_true, vLLM's enable/disable pairs,
                          each `--no-`/`--disable-` form included)
  architectures           the model architectures vLLM's registry supports, by kind:
                          text_generation, multimodal, pooling (embedding, late interaction,
                          reward and classification), speculative_decoding, and
                          transformers_backend (the Transformers wrapper's own names)

The catalog refuses an engine argument that is not an option here (toolkit/catalog/configs.py);
tests/test_vllm_args.py regenerates the file and compares, so it follows the pin.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import vllm
from vllm.entrypoints.common.cli_args import make_arg_parser
from vllm.model_executor.models import registry
from vllm.utils.argparse_utils import FlexibleArgumentParser

DEFAULT = Path(__file__).resolve().parent.parent / "configs" / "vllm-facts.json"
POOLING = (
    "_EMBEDDING_MODELS",
    "_LATE_INTERACTION_MODELS",
    "_REWARD_MODELS",
    "_TOKEN_CLASSIFICATION_MODELS",
    "_SEQUENCE_CLASSIFICATION_MODELS",
)


def options() -> tuple[list[str], list[str]]:
    parser = make_arg_parser(FlexibleArgumentParser())
    every: set[str] = set()
    no_value: set[str] = set()
    for action in parser._actions:
        names = {o[2:] for o in action.option_strings if o.startswith("--")}
        every |= names
        if action.nargs == 0:
            no_value |= names
    return sorted(every), sorted(no_value)


def architectures() -> dict[str, list[str]]:
    kinds: dict[str, set[str]] = {
        "text_generation": set(registry._TEXT_GENERATION_MODELS),
        "multimodal": set(registry._MULTIMODAL_MODELS),
        "pooling": {arch for table in POOLING for arch in getattr(registry, table)},
        "speculative_decoding": set(registry._SPECULATIVE_DECODING_MODELS),
        "transformers_backend": set(registry._TRANSFORMERS_BACKEND_MODELS),
    }
    # Served through the Transformers wrapper: the wrapper's class says which kind it is.
    for arch, (_, wrapper) in registry._TRANSFORMERS_SUPPORTED_MODELS.items():
        if wrapper.startswith("TransformersMultiModal"):
            kinds["multimodal"].add(arch)
        elif wrapper in ("TransformersForCausalLM", "TransformersMoEForCausalLM"):
            kinds["text_generation"].add(arch)
        else:
            raise SystemExit(f"{arch}: no kind for the Transformers wrapper {wrapper}")
    found = set().union(*kinds.values())
    supported = set(registry.ModelRegistry.get_supported_archs())
    if found != supported:
        raise SystemExit(f"the registry's tables miss {sorted(supported - found)}")
    return {kind: sorted(archs) for kind, archs in kinds.items()}


def facts() -> str:
    every, no_value = options()
    data = {
        "server": "vLLM",
        "version": vllm.__version__,
        "options": every,
        "no_value_options": no_value,
        "architectures": architectures(),
    }
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    target.write_text(facts(), encoding="utf-8")


if __name__ == "__main__":
    main()
