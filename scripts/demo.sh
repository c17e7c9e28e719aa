#!/usr/bin/env bash
# The offline CPU demo (`make demo`): tiny local models, the demo images built from the real
# templates, started with `toolkit start`, one real request each, then stopped.
# Needs no GPU and no registry: the base image is made locally (make base-image) and torch
# comes from a local wheelhouse when the machine has one.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${VENV:-.venv}
toolkit="$venv/bin/toolkit"
base=${BASE_IMAGE:-toolkit-local/python:3.11-bookworm}
wheels=.demo/wheelhouse

step() { printf '\n==> %s\n' "$*"; }

cleanup() {
  "$toolkit" stop demo-image >/dev/null 2>&1 || true
  "$toolkit" stop demo-vllm >/dev/null 2>&1 || true
}
trap cleanup EXIT

step "tiny random models (nothing is downloaded)"
"$venv/bin/python" scripts/make_tiny_models.py .demo/models

step "a wheelhouse holding torch (a local CPU build where the machine has one)"
mkdir -p "$wheels"
torch=$("$venv/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])')
"$venv/bin/pip" download --quiet --no-deps --only-binary=:all: --dest "$wheels" "torch==$torch"
ls "$wheels"

for config in demo-image demo-vllm; do
  step "toolkit build $config"
  "$toolkit" build "$config" --wheelhouse "$wheels" --base-image "$base"
done

step "toolkit start demo-image"
"$toolkit" start demo-image
step "toolkit start demo-vllm (the real vLLM, built for CPUs: about a minute on two cores)"
"$toolkit" start demo-vllm
"$toolkit" status

step "one request to each: an image, then a chat answer"
OUT=.demo/cat.png SIZE=64x64 scripts/request-service-openai-image.sh demo-image
scripts/request-service-openai-text.sh demo-vllm

step "the protocol probes"
"$toolkit" probe demo-image
"$toolkit" probe demo-vllm

step "toolkit stop"
"$toolkit" stop demo-image
"$toolkit" stop demo-vllm
trap - EXIT
echo
echo "demo passed: both services answered over their protocols and were stopped."
