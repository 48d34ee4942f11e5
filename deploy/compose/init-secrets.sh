#!/bin/sh
# Writes the secret files compose.yaml mounts (./secrets, git-ignored). Existing files are kept.
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
random() { head -c "$1" /dev/urandom | base64 | tr -d '\n/+=' ; }
[ -f secrets/postgres_password ] || random 24 > secrets/postgres_password
[ -f secrets/database_url ] ||
  printf 'postgres://cowork:%s@postgres:5432/cowork\n' "$(cat secrets/postgres_password)" > secrets/database_url
# 32 random bytes, base64, one per line: the format OPEN_COWORK_CLOUD_SECRET_KEY_REF expects.
[ -f secrets/cowork_secret_key ] || { head -c 32 /dev/urandom | base64; } > secrets/cowork_secret_key
[ -f secrets/s3_access_key_id ] || printf 'cowork%s\n' "$(random 9)" > secrets/s3_access_key_id
[ -f secrets/s3_secret_access_key ] || random 30 > secrets/s3_secret_access_key
# The gateway (profile `gateway`): its admin and inbound webhook secrets are random; its service token is issued by
# the web role (POST /api/channels/gateway-tokens): replace the placeholder with that token before starting it.
[ -f secrets/gateway_admin_token ] || random 30 > secrets/gateway_admin_token
[ -f secrets/gateway_webhook_secret ] || random 30 > secrets/gateway_webhook_secret
[ -f secrets/gateway_token ] || echo 'not-issued-yet: replace with a token from POST /api/channels/gateway-tokens' > secrets/gateway_token
# The containers run as uid 10001 (and Postgres / MinIO as their own users): bind-mounted secret files must be
# readable by them. cowork logs a warning that the key file is group/other-readable; on a shared host prefer
# `chown 10001` on cowork_secret_key and mode 0400.
chmod 0444 secrets/*
# Per-org binding credentials for the gateway (OPEN_COWORK_GATEWAY_CREDENTIALS_DIR, mounted read-only): one
# directory per org id, e.g. credentials/org_0mx3ur2k8c1f0a/tg-bot, which that org's bindings name as "file:tg-bot".
# Readable by uid 10001 like the secrets above (on a shared host prefer `chown -R 10001` and modes 0700 / 0400).
mkdir -p credentials
chmod 0755 credentials
echo "secrets written to $(pwd)/secrets; per-org gateway credentials go in $(pwd)/credentials/<orgId>/"
