#!/usr/bin/env bash
# Debian packages the engine tests use beside the engine: docker-registry, a real registry the
# push tests start on loopback with their own storage.
set -euo pipefail

if ! command -v docker-registry >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null
fi
