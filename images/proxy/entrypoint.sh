#!/bin/sh
# Turn the API key secret into nginx's map of the one accepted Authorization header, on tmpfs,
# then run nginx in the foreground. The key never reaches the environment or a log.
set -eu
key_file=/run/secrets/api_key
key=$(cat "$key_file")
case "$key" in
  "" | *[!A-Za-z0-9._~+/=-]*)
    echo "the API key in $key_file is empty or holds characters other than A-Z a-z 0-9 . _ ~ + / = -" >&2
    exit 1
    ;;
esac
umask 077
# shellcheck disable=SC2016  # nginx variables, literal
printf 'map $http_authorization $toolkit_key_ok {\n    default 0;\n    "Bearer %s" 1;\n}\n' "$key" >/tmp/key.conf
exec nginx -e stderr -c /etc/toolkit/nginx.conf -g 'daemon off;'
