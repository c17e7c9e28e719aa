#!/usr/bin/env bash
# Start a catalog config's service and wait until its model answers (the seed interface).
set -euo pipefail
if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  echo "usage: $0 CONFIG [toolkit start options]   e.g. $0 llama3-70b_4 --gpus 4,5,6,7"
  [ $# -ge 1 ] && exit 0 || exit 2
fi
# shellcheck source=scripts/_toolkit.sh
. "$(dirname "$0")/_toolkit.sh"
exec "$(toolkit_bin)" start "$@"
