#!/usr/bin/env bash
# Wall time of `toolkit list` against `docker compose version` (the Compose v2 binary), with
# hyperfine: warm-up runs first, then the mean and the ratio. Run from the repository root:
#   benchmarks/list-vs-compose.sh        (or: make bench)
set -euo pipefail

venv=${VENV:-.venv}
if ! command -v hyperfine >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null
fi
compose=$("$venv/bin/python" -c 'from toolkit.compose import compose_command; print(" ".join(compose_command()))')

hyperfine --warmup 3 --runs "${RUNS:-20}" --shell=none \
  --command-name "toolkit list" "$venv/bin/toolkit list" \
  --command-name "compose version" "$compose version"
