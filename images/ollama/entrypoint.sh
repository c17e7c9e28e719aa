#!/bin/sh
# Start Ollama, make the served model exist once (in the cache volume), then keep serving.
# Ollama pulls nothing on start by itself: this is the step that does.
#   TOOLKIT_SERVED_NAME   the name clients send
#   TOOLKIT_OLLAMA_SOURCE an Ollama library tag to pull, or empty when /models/local
#                         holds a Modelfile (with its GGUF files) to `ollama create` from
set -eu

ollama serve &
server=$!
trap 'kill "$server"' TERM INT

until ollama list >/dev/null 2>&1; do
  kill -0 "$server" 2>/dev/null || exit 1
  sleep 1
done

if ! ollama show "$TOOLKIT_SERVED_NAME" >/dev/null 2>&1; then
  if [ -n "${TOOLKIT_OLLAMA_SOURCE:-}" ]; then
    echo "pulling $TOOLKIT_OLLAMA_SOURCE as $TOOLKIT_SERVED_NAME"
    ollama pull "$TOOLKIT_OLLAMA_SOURCE"
    ollama cp "$TOOLKIT_OLLAMA_SOURCE" "$TOOLKIT_SERVED_NAME"
  else
    echo "creating $TOOLKIT_SERVED_NAME from /models/local/Modelfile"
    cd /models/local && ollama create "$TOOLKIT_SERVED_NAME" -f Modelfile
  fi
fi
echo "model $TOOLKIT_SERVED_NAME ready"
wait "$server"
