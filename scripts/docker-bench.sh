#!/usr/bin/env bash
# docker-bench-security's container-runtime checks (CIS Docker Benchmark section 5) against the
# running toolkit services: only containers with the toolkit's config label are checked.
#   DOCKER_BENCH_DIR=DIR scripts/docker-bench.sh [LOG]     (default LOG: docker-bench.log here)
# DIR is docker-bench-security at the pinned commit; nothing is downloaded by this script:
#   git clone https://github.com/docker/docker-bench-security DIR
#   git -C DIR checkout ff26d67f25be60fc2d82a01710ee14570b2cb9db
# Run it as root (or a member of the docker group) with the services started by `toolkit start`.
# The README's "Hardened containers" section explains every WARN that remains.
set -euo pipefail

pinned=ff26d67f25be60fc2d82a01710ee14570b2cb9db
label=io.github.model-serving-toolkit.config
dir=${DOCKER_BENCH_DIR:-}
log=$(realpath -m "${1:-docker-bench.log}")

if [ -z "$dir" ] || [ ! -f "$dir/docker-bench-security.sh" ]; then
  echo "DOCKER_BENCH_DIR must name a docker-bench-security checkout at $pinned; see the comment at the top of $0." >&2
  exit 2
fi
if commit=$(git -C "$dir" rev-parse HEAD 2>/dev/null) && [ "$commit" != "$pinned" ]; then
  echo "note: $dir is at $commit, not the pinned $pinned; results may differ." >&2
fi
if [ -z "$(docker ps --quiet --filter "label=$label")" ]; then
  echo "no toolkit service is running; start one (e.g. toolkit start demo-image) first." >&2
  exit 1
fi
cd "$dir"
sh docker-bench-security.sh -b -c container_runtime -t "$label" -l "$log"
