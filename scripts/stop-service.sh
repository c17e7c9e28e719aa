#!/usr/bin/env bash
# Stop a catalog config's service; safe to repeat (the seed interface).
set -euo pipefail
if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  echo "usage: $0 CONFIG [--volumes]   e.g. $0 llama3-70b_4"
  [ $# -ge 1 ] && exit 0 || exit 2
fi
# shellcheck source=scripts/_toolkit.sh
. "$(dirname "$0")/_toolkit.sh"
exec "$(toolkit_bin)" stop "$@"
