#!/bin/bash
# Healthy means the served model loads and answers: a one-token generation, which also keeps it
# loaded (keep_alive), not just a manifest on disk (`ollama show`, /api/tags). The Ollama image
# has neither curl nor python (ollama#9781), so bash's /dev/tcp speaks the HTTP.
#   healthcheck.sh PORT MODEL [KEEP_ALIVE]   exit 0 when /api/generate answers 200 and done
set -eu
export LC_ALL=C  # ${#body} counts bytes, as Content-Length does
port=$1 model=$2 keep_alive=${3:-1h}
# The name is data (an argument, never code): escaped as a JSON string.
name=${model//\\/\\\\}
name=${name//\"/\\\"}
name=${name//$'\n'/\\n}
body='{"model":"'"$name"'","prompt":"hi","stream":false,"keep_alive":"'"$keep_alive"'","options":{"num_predict":1}}'
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
  "${#body}" "$body" >&3
answer=""
line=""
# Compose kills the check after its 10 s timeout; stop reading a little before that.
while IFS= read -r -t 9 line <&3 || [ -n "$line" ]; do
  answer+="$line"$'\n'
  line=""
done
status=${answer%%$'\r'*}
body=${answer##*$'\r\n'}
body=${body%$'\n'}
case "$status" in
  "HTTP/1."?" 200"*)
    case "${body//[[:space:]]/}" in
      *'"done":true'*) exit 0 ;;
    esac
    echo "$model answered without finishing: $body" >&2
    ;;
  "") echo "no answer from 127.0.0.1:$port within 9 s (the model may still be loading)" >&2 ;;
  *) echo "$model is not ready: $status $body" >&2 ;;
esac
exit 1
