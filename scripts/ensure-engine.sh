#!/usr/bin/env bash
# Make a Docker engine usable on a fresh Debian machine: install docker.io when
# dockerd is missing, start dockerd when none answers, and wait until it does.
set -euo pipefail

if ! command -v dockerd >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

if docker info >/dev/null 2>&1; then
  exit 0
fi

log=${DOCKERD_LOG:-/var/log/dockerd.log}
nohup dockerd >"$log" 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "dockerd did not answer within 60 s; its log is in $log." >&2
tail -n 20 "$log" >&2
exit 1
