#!/usr/bin/env bash
# How fast the read-only commands answer, next to the tools beside them, with hyperfine (warm-up
# runs first, then the median of each and the ratio). Run from the repository root:
#   benchmarks/read-commands.sh        (or: make bench)
# `status` needs a Docker engine (make engine); the others need none.
set -euo pipefail

venv=${VENV:-.venv}
runs=${RUNS:-30}
if ! command -v hyperfine >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null
fi
toolkit="$venv/bin/toolkit"
compose=$("$venv/bin/python" -c 'from toolkit.host.compose import compose_command; print(" ".join(compose_command()))')
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

measure() {  # NAME COMMAND: median seconds of COMMAND into $results/NAME
  hyperfine --warmup 3 --runs "$runs" --shell=none --style none \
    --export-json "$results/$1.json" "$2" >/dev/null
  "$venv/bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' \
    "$results/$1.json" >"$results/$1"
}

measure compose "$compose version"
measure docker-ps "docker ps"
measure list "$toolkit list"
measure show "$toolkit show llama3-70b_4"
measure plan "$toolkit plan llama3-70b_4"
measure status "$toolkit status"

report() {  # COMMAND NAME BASELINE-NAME BASELINE-LABEL
  awk -v c="$1" -v t="$(cat "$results/$2")" -v b="$(cat "$results/$3")" -v l="$4" \
    'BEGIN { printf "%-34s %7.1f ms   %-26s %7.1f ms   %5.2fx\n", c, t * 1000, l, b * 1000, t / b }'
}
printf '%-34s %10s   %-26s %10s   %6s\n' "command (median of $runs)" "time" "beside" "time" "ratio"
report "toolkit list" list compose "docker compose version"
report "toolkit show llama3-70b_4" show compose "docker compose version"
report "toolkit plan llama3-70b_4" plan compose "docker compose version"
report "toolkit status" status docker-ps "docker ps"
