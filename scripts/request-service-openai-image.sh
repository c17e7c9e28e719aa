#!/usr/bin/env bash
# Ask an OpenAI Images API server for the seed's image and save it as a PNG.
#   HOST (default 127.0.0.1), PORT (default 1042), SIZE (default 1024x1024) and
#   OUT (default ./MODEL-TIMESTAMP.png) are read from the environment.
set -euo pipefail
if [ $# -ne 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  echo "usage: [HOST=127.0.0.1] [PORT=1042] [SIZE=1024x1024] [OUT=file.png] $0 MODEL"
  [ $# -eq 1 ] && exit 0 || exit 2
fi
model=$(printf '%s' "$1" | python3 -c 'import json, sys; print(json.dumps(sys.stdin.read()))')
out=${OUT:-./$(printf '%s' "$1" | tr -c 'A-Za-z0-9._-' '_')-$(date +%Y%m%d-%H%M%S).png}
response=$(mktemp)
trap 'rm -f "$response"' EXIT
curl --silent --show-error --fail-with-body --max-time "${TIMEOUT:-600}" \
  "http://${HOST:-127.0.0.1}:${PORT:-1042}/v1/images/generations" \
  -H "Content-Type: application/json" -o "$response" \
  -d "{\"prompt\": \"A cat holding a sign that says hello world\",
       \"size\": \"${SIZE:-1024x1024}\", \"model\": $model, \"response_format\": \"b64_json\"}" \
  || { cat "$response" >&2; echo >&2; exit 1; }
python3 - "$response" "$out" <<'PY'
import base64, json, sys
data = json.load(open(sys.argv[1]))["data"][0]["b64_json"]
png = base64.b64decode(data)
if not png.startswith(b"\x89PNG"):
    sys.exit("the answer is not a PNG")
open(sys.argv[2], "wb").write(png)
PY
echo "saved $out"
