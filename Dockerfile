# syntax=docker/dockerfile:1
# One image for every role of Cowork Cloud (web, worker, scheduler, all-in-one, migrate, admin).
#   docker build -t cowork-cloud .
#   docker run cowork-cloud web | worker | scheduler | up | migrate | admin ...
#   docker run -e OPEN_COWORK_CLOUD_ROLE=worker cowork-cloud          # no command: the role in OPEN_COWORK_CLOUD_ROLE
# The TypeScript sources run as they are (Node 24 strips types); `npm ci` builds the web workbench bundle (the root
# `prepare` script: Vite, a dependency of apps/workbench, so --omit=dev keeps it).
# See deploy/README.md for the environment, secrets-as-files (`*_FILE`) and the probes.

ARG NODE_VERSION=24

# ---- deps: production node_modules (workspace links included), built on the same base as the runtime ----
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
ENV NODE_ENV=production \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
# The whole tree (filtered by .dockerignore): every workspace's package.json must be present for `npm ci`.
COPY . .
RUN npm ci --omit=dev \
 && npm cache clean --force \
 && rm -rf apps/*/test packages/*/test test

# ---- runtime ----
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# tini: PID 1 forwards SIGTERM to node and reaps the worker's child processes (opencode).
# git: the opencode runtime needs it on the PATH. ca-certificates: TLS to model providers and S3.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini git ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 cowork \
 && useradd --system --uid 10001 --gid cowork --home-dir /var/lib/cowork --shell /usr/sbin/nologin cowork \
 && mkdir -p /var/lib/cowork \
 && chown cowork:cowork /var/lib/cowork \
 && chmod 0700 /var/lib/cowork
WORKDIR /app
# The application is owned by root and read-only for the runtime user; only /var/lib/cowork is writable.
COPY --from=deps /app /app
ENV NODE_ENV=production \
    OPEN_COWORK_CLOUD_HOST=0.0.0.0 \
    OPEN_COWORK_CLOUD_PORT=8787 \
    OPEN_COWORK_CLOUD_LIVENESS_PORT=8788 \
    OPEN_COWORK_DATA_DIR=/var/lib/cowork \
    HOME=/var/lib/cowork
USER 10001:10001
VOLUME ["/var/lib/cowork"]
# 8787: web API (web, up). 8788: /livez, /readyz, /metrics of worker and scheduler.
EXPOSE 8787 8788
# The app drains on SIGTERM within OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS (default 30 s): give it that plus a margin
# (`docker stop -t 45`, compose `stop_grace_period`, Kubernetes `terminationGracePeriodSeconds`).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "/app/deploy/docker/healthcheck.mjs", "/livez"]
ENTRYPOINT ["/usr/bin/tini", "--", "/app/deploy/docker/entrypoint.sh"]
CMD []
