#!/usr/bin/env bash
# Ask an OpenAI Images API server for the seed's image and save it as a PNG.
# SIZE (default 1024x1024, the seed's; 256x256 answers in seconds on a CPU) and OUT (default
# ./MODEL-TIMESTAMP.png) come from the environment; API_KEY (or TOOLKIT_API_KEY) is sent if set.
set -euo pipefail
EXAMPLE=flux.1-dev
EXTRA_USAGE="SIZE=WxH and OUT=FILE.png are read from the environment."
# shellcheck source=scripts/_request.sh
. "$(dirname "$0")/_request.sh"
parse_request_args "$@"
size=${SIZE:-1024x1024}
out=${OUT:-./$(printf '%s' "$model" | tr -c 'A-Za-z0-9._-' '_')-$(date +%Y%m%d-%H%M%S).png}
response=$(mktemp)
mapfile -t auth < <(auth_header)

# Drawing takes a while (minutes at 1024x1024 on a CPU): say so, and show the time going by.
printf 'asking %s at %s:%s for a %s image...' "$model" "$host" "$port" "$size" >&2
(while sleep 5; do printf ' %ds' "$SECONDS" >&2; done) &
ticker=$!
trap 'kill "$ticker" 2>/dev/null || true; rm -f "$response"' EXIT

status=0
curl --silent --show-error --fail-with-body --max-time "${TIMEOUT:-600}" "${auth[@]}" \
  "http://$host:$port/v1/images/generations" \
  -H "Content-Type: application/json" -o "$response" \
  -d "{\"prompt\": \"A cat holding a sign that says hello world\",
       \"size\": \"$size\", \"model\": $(json_string "$model"), \"response_format\": \"b64_json\"}" \
  || status=$?
kill "$ticker" 2>/dev/null || true
echo >&2
if [ "$status" -ne 0 ]; then
  cat "$response" >&2
  echo >&2
  exit "$status"
fi
# The answer is {"data": [{"b64_json": "..."}], ...}; base64 holds no quotes to trip on.
tr -d '\n\134' <"$response" | sed -n 's/.*"b64_json": *"\([A-Za-z0-9+\/=]*\)".*/\1/p' \
  | base64 -d >"$out" 2>/dev/null || true
if [ "$(head -c 4 "$out" | tail -c 3)" != "PNG" ]; then
  rm -f "$out"
  echo "the answer holds no PNG image: $(head -c 300 "$response")" >&2
  exit 1
fi
echo "saved $out"
