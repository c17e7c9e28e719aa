#!/usr/bin/env bash
# Check GitHub workflows: GitHub's schema (check-jsonschema's vendored copy) and zizmor, the
# GitHub Actions security linter, both offline. `make lint` and tests/test_workflow.py run this.
#   scripts/lint-workflows.sh [FILE...]     (default: .github/workflows/*.yml)
# zizmor runs twice: at its default persona with no ignore comment honoured, so that nothing it
# reports by default can be waved away; then at the pedantic persona, where a finding may stay
# only with an inline `# zizmor: ignore[rule]` comment that says why. Any finding fails.
# The tools come from PATH (`make lint` puts .venv/bin first).
set -euo pipefail

if [ "$#" -eq 0 ]; then
  cd "$(dirname "$0")/.."
  set -- .github/workflows/*.yml
fi

check-jsonschema --builtin-schema vendor.github-workflows "$@"

# zizmor reports a checkout that keeps the job's token only where persist-credentials is left
# out, and takes an explicit `true` as a choice. No job here needs the token after its checkout.
message="a checkout keeps the job's token in .git/config (persist-credentials: true); set it to false."
if awk -v message="$message" '
  /^[[:space:]]*persist-credentials:[[:space:]]*["\047]?true/ {
    printf "%s:%d: %s\n", FILENAME, FNR, message; found = 1
  }
  END { exit !found }' "$@" >&2; then
  exit 1
fi

zizmor --quiet --offline --no-progress --color never --no-ignores "$@"
zizmor --quiet --offline --no-progress --color never --persona pedantic "$@"
