#!/usr/bin/env bash
# Debian packages the engine tests use beside the engine: docker-registry, a real registry the
# push tests start on loopback with their own storage; kubectl, for `kubectl kustomize` on the
# rendered Kubernetes manifests (Debian 12's kubernetes-client where no kubectl is installed);
# chromium, headless, to look at `toolkit bench`'s HTML report as a person would.
# prometheus, the real server that scrapes `toolkit metrics --serve` (run on loopback by the test,
# not as the package's service).
set -euo pipefail

missing=()
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
