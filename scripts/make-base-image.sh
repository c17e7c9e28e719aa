#!/usr/bin/env bash
# The local Debian 12 + Python 3.11 base image the demo and the engine tests build on. Usage:
#   scripts/make-base-image.sh [TAG]     (default: toolkit-local/python:3.11-bookworm)
# Where Docker Hub answers (GitHub's runners), the catalog's own base image
# (configs/_backends.yaml, python:3.11-slim-bookworm) is pulled and tagged TAG. Where it does
# not (CI here, air-gapped hosts), a minimal one is built with debootstrap from Debian's archive.
# BASE_UPSTREAM names another image to try first; BASE_UPSTREAM= (empty) skips the pull.
set -euo pipefail

tag=${1:-toolkit-local/python:3.11-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
backends="$(dirname "$0")/../configs/_backends.yaml"
upstream=${BASE_UPSTREAM-$(sed -n 's/^ *base: *\(python:[^ ]*\).*$/\1/p;T;q' "$backends")}

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag already exists."
  exit 0
fi

if [ -n "$upstream" ]; then
  if error=$(timeout 300 docker pull --quiet "$upstream" 2>&1 >/dev/null); then
    docker tag "$upstream" "$tag"
    echo "tagged $upstream as $tag"
    exit 0
  fi
  echo "cannot pull $upstream (${error:-timed out}); building $tag with debootstrap instead."
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase \
  --include=python3,python3-venv,ca-certificates \
  bookworm "$root" "$mirror" >/dev/null
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  - "$tag" >/dev/null
echo "built $tag"
