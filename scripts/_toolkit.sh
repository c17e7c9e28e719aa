# Sourced by the seed scripts: find the toolkit (on PATH, or in the repository's .venv).
# shellcheck shell=bash
toolkit_bin() {
  local here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if [ -x "$here/.venv/bin/toolkit" ]; then
    echo "$here/.venv/bin/toolkit"
  elif command -v toolkit >/dev/null 2>&1; then
    command -v toolkit
  else
    echo "toolkit is not installed; run 'make setup' in $here first." >&2
    return 1
  fi
}
