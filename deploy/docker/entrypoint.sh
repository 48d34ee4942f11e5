#!/bin/sh
# Container entry point: secrets as files, then the cowork CLI with the container's command as its arguments.
# For every OPEN_COWORK_<NAME>_FILE=/path in the environment, OPEN_COWORK_<NAME> is set to that file's content
# (trailing newline removed), so Docker / Kubernetes secrets never sit in plain environment variables
# (e.g. OPEN_COWORK_DATABASE_URL_FILE=/run/secrets/database_url). Setting both is an error.
set -eu
for name in $(env | sed -n 's/^\(OPEN_COWORK_[A-Z0-9_]*\)_FILE=.*$/\1/p'); do
  eval "file=\${${name}_FILE}"
  eval "already=\${${name}:-}"
  if [ -n "$already" ]; then
    echo "{\"level\":\"ERROR\",\"message\":\"both ${name} and ${name}_FILE are set; set one\"}" >&2
    exit 1
  fi
  if [ ! -r "$file" ]; then
    echo "{\"level\":\"ERROR\",\"message\":\"${name}_FILE names ${file}, which cannot be read\"}" >&2
    exit 1
  fi
  value=$(cat "$file")
  export "${name}=${value}"
  unset "${name}_FILE"
done
exec node /app/apps/cli/src/main.ts "$@"
