#!/bin/sh
# Start Ollama, make the served model exist once (in the cache volume), then keep serving.
# Ollama pulls nothing on start by itself: this is the step that does.
#   TOOLKIT_SERVED_NAME   the name clients send
#   TOOLKIT_OLLAMA_SOURCE an Ollama library tag to pull, or empty when /models/local
#                         holds the model: a Modelfile (with its GGUF files) to `ollama
#                         create` from, or the GGUF files the next two name
#   TOOLKIT_OLLAMA_GGUF   the model's GGUF file in /models/local, when it has no Modelfile
#   TOOLKIT_OLLAMA_PROJECTOR  its vision projector's GGUF file there (optional): the
#                         Modelfile written here names both files in FROM lines, and Ollama
#                         stores the projector as the model's projector layer
# `docker stop` sends SIGTERM and, 10 s later, SIGKILL. A shell defers a trap until its
# foreground command ends, so every long step runs in the background and the shell waits on
# it: the trap then runs at once, forwards the signal to the step and the server, and waits
# for both to exit.
set -eu

step=""
stop() {
  trap - TERM INT
  [ -z "$step" ] || kill -TERM "$step" 2>/dev/null || true
  kill -TERM "$server" 2>/dev/null || true
  wait
  exit 143
}
# Run one command as a step that SIGTERM interrupts; its exit status is the step's.
run() {
  "$@" &
  step=$!
  wait "$step"
  step=""
}

ollama serve &
server=$!
trap stop TERM INT

until ollama list >/dev/null 2>&1; do
  kill -0 "$server" 2>/dev/null || exit 1
  run sleep 1
done

if ! ollama show "$TOOLKIT_SERVED_NAME" >/dev/null 2>&1; then
  if [ -n "${TOOLKIT_OLLAMA_SOURCE:-}" ]; then
    echo "pulling $TOOLKIT_OLLAMA_SOURCE as $TOOLKIT_SERVED_NAME"
    run ollama pull "$TOOLKIT_OLLAMA_SOURCE"
    run ollama cp "$TOOLKIT_OLLAMA_SOURCE" "$TOOLKIT_SERVED_NAME"
  elif [ -n "${TOOLKIT_OLLAMA_GGUF:-}" ]; then
    # /models/local is read-only: the Modelfile goes to HOME, which is on the cache volume.
    modelfile="$HOME/Modelfile"
    echo "FROM /models/local/$TOOLKIT_OLLAMA_GGUF" >"$modelfile"
    if [ -n "${TOOLKIT_OLLAMA_PROJECTOR:-}" ]; then
      echo "FROM /models/local/$TOOLKIT_OLLAMA_PROJECTOR" >>"$modelfile"
    fi
    echo "creating $TOOLKIT_SERVED_NAME from $modelfile:"
    cat "$modelfile"
    run ollama create "$TOOLKIT_SERVED_NAME" -f "$modelfile"
  else
    echo "creating $TOOLKIT_SERVED_NAME from /models/local/Modelfile"
    cd /models/local
    run ollama create "$TOOLKIT_SERVED_NAME" -f Modelfile
  fi
fi
echo "model $TOOLKIT_SERVED_NAME ready"
wait "$server"
