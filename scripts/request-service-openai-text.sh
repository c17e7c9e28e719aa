#!/usr/bin/env bash
# Send the seed's chat request to an OpenAI-compatible server and print the answer.
#   HOST (default 127.0.0.1) and PORT (default 1042) choose the server; API_KEY, if set, is sent.
set -euo pipefail
if [ $# -ne 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  echo "usage: [HOST=127.0.0.1] [PORT=1042] $0 MODEL   e.g. $0 Llama3-70B"
  [ $# -eq 1 ] && exit 0 || exit 2
fi
model=$(printf '%s' "$1" | python3 -c 'import json, sys; print(json.dumps(sys.stdin.read()))')
auth=()
[ -n "${API_KEY:-}" ] && auth=(-H "Authorization: Bearer $API_KEY")
curl --silent --show-error --fail-with-body --max-time "${TIMEOUT:-300}" "${auth[@]}" \
  "http://${HOST:-127.0.0.1}:${PORT:-1042}/v1/chat/completions" \
  -H "Content-Type: application/json" \
  -d "{\"model\": $model, \"messages\": [{\"role\": \"user\", \"content\": \"Hello!\"}]}"
echo
