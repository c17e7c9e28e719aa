#!/usr/bin/env bash
# Send the seed's chat request to an Ollama server; with no "stream" key Ollama streams NDJSON.
#   HOST (default 127.0.0.1) and PORT (default 1042) choose the server.
set -euo pipefail
if [ $# -ne 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  echo "usage: [HOST=127.0.0.1] [PORT=1042] $0 MODEL   e.g. $0 MiniCPM-V-2.6"
  [ $# -eq 1 ] && exit 0 || exit 2
fi
model=$(printf '%s' "$1" | python3 -c 'import json, sys; print(json.dumps(sys.stdin.read()))')
curl --silent --show-error --fail-with-body --max-time "${TIMEOUT:-300}" \
  "http://${HOST:-127.0.0.1}:${PORT:-1042}/api/chat" \
  -H "Content-Type: application/json" \
  -d "{\"model\": $model, \"messages\": [
        {\"role\": \"system\", \"content\": \"You are a helpful assistant.\"},
        {\"role\": \"user\", \"content\": \"Hello!\"}]}"
echo
