# Sourced by the request scripts: their arguments, the running service's port, JSON quoting.
# Bash and curl only (and the docker CLI, if there is one, to find a running service's port).
# shellcheck shell=bash disable=SC2034  # host, port and model are the callers'

LABEL=io.github.model-serving-toolkit

usage() {
  echo "usage: $0 [--host HOST] [--port PORT] CONFIG|MODEL   e.g. $0 $EXAMPLE"
  echo "  CONFIG or MODEL names a running toolkit service (its port is looked up), or the"
  echo "  served model name to send; HOST and PORT may also come from the environment"
  echo "  (defaults 127.0.0.1 and the service's port, else 1042). ${EXTRA_USAGE:-}"
}

# Sets host, port and model from the arguments, the environment and the running services.
parse_request_args() {
  host=${HOST:-127.0.0.1}
  port=${PORT:-}
  model=""
  while [ $# -gt 0 ]; do
    case "$1" in
      -h | --help) usage; exit 0 ;;
      --host) host=${2:?--host needs a value}; shift 2 ;;
      --host=*) host=${1#*=}; shift ;;
      --port) port=${2:?--port needs a value}; shift 2 ;;
      --port=*) port=${1#*=}; shift ;;
      -*) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
      *)
        if [ -n "$model" ]; then usage >&2; exit 2; fi
        model=$1; shift ;;
    esac
  done
  if [ -z "$model" ]; then usage >&2; exit 2; fi
  [ -n "$port" ] || lookup_service "$model"
  port=${port:-1042}
}

# A running toolkit service whose config name or served name is $1: its port and served name.
lookup_service() {
  command -v docker >/dev/null 2>&1 || return 0
  local key found
  for key in config model; do
    found=$(docker ps --filter "label=$LABEL.$key=$1" \
      --format "{{.Label \"$LABEL.port\"}} {{.Label \"$LABEL.model\"}}" 2>/dev/null | head -n 1) || true
    if [ -n "$found" ]; then
      port=${found%% *}
      model=${found#* }
      return 0
    fi
  done
}

# $1 as a JSON string: backslashes and quotes escaped, control characters dropped.
json_string() {
  local s
  s=$(printf '%s' "$1" | tr -d '\000-\037')
  s=${s//\\/\\\\}
  printf '"%s"' "${s//\"/\\\"}"
}

auth_header() {  # curl arguments for API_KEY (or TOOLKIT_API_KEY), if one is set
  local key=${API_KEY:-${TOOLKIT_API_KEY:-}}
  [ -z "$key" ] || printf '%s\n' -H "Authorization: Bearer $key"
}
