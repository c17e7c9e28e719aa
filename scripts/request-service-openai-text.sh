#!/usr/bin/env bash
# Send the seed's chat request to an OpenAI-compatible server and print the answer.
# API_KEY (or TOOLKIT_API_KEY), if set, is sent as a bearer token.
set -euo pipefail
EXAMPLE=llama3-70b_4
# shellcheck source=scripts/_request.sh
. "$(dirname "$0")/_request.sh"
parse_request_args "$@"
mapfile -t auth < <(auth_header)
curl --silent --show-error --fail-with-body --max-time "${TIMEOUT:-300}" "${auth[@]}" \
  "http://$host:$port/v1/chat/completions" \
  -H "Content-Type: application/json" \
  -d "{\"model\": $(json_string "$model"), \"messages\": [{\"role\": \"user\", \"content\": \"Hello!\"}]}"
echo
