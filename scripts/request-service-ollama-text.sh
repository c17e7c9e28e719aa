#!/usr/bin/env bash
# Send the seed's chat request to an Ollama server; with no "stream" key Ollama streams NDJSON.
set -euo pipefail
EXAMPLE=minicpm-v2.5
# shellcheck source=scripts/_request.sh
. "$(dirname "$0")/_request.sh"
parse_request_args "$@"
curl --silent --show-error --fail-with-body --max-time "${TIMEOUT:-300}" \
  "http://$host:$port/api/chat" \
  -H "Content-Type: application/json" \
  -d "{\"model\": $(json_string "$model"), \"messages\": [
        {\"role\": \"system\", \"content\": \"You are a helpful assistant.\"},
        {\"role\": \"user\", \"content\": \"Hello!\"}]}"
echo
