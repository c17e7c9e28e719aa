#!/usr/bin/env bash
# A virtual environment holding the pinned vLLM's own argument parser and model checks, for the
# tests that every rendered vLLM command line is one that vLLM accepts and passes its start-time
# checks on the config's twin. No GPU needed: vLLM is installed without its dependencies, and
# only what importing its CLI arguments and model config needs is added (CPU torch).
#   scripts/make-vllm-parser-venv.sh [DIR]     (default: .venv-vllm)
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${1:-.venv-vllm}
version=$(sed -n 's#^ *base: vllm/vllm-openai:v##p' configs/_backends.yaml)
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --no-deps "vllm==$version" -r tests/vllm-parser-requirements.txt
VLLM_TARGET_DEVICE=cpu "$venv/bin/python" -c \
  'from vllm.entrypoints.common.cli_args import make_arg_parser' 2>/dev/null
echo "vLLM $version's argument parser is importable from $venv"
