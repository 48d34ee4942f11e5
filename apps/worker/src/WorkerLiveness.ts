import type { Readiness } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { ReadinessChecks } from "@cowork/postgres"
import { secretAdapterCheck } from "@cowork/secrets"
import { type ChangeFeed, type DeploymentMarkers, ListenHost, type ObjectStore, type SecretAdapter } from "@cowork/services"
import { objectStoreCheck } from "@cowork/storage"
import { NodeHttpServer } from "@effect/platform-node"
import { Config, Effect, Layer, Option, Ref } from "effect"
import { HttpRouter, type HttpServerError, HttpServerResponse } from "effect/http"
import { SqlClient } from "effect/sql"
import { createServer } from "node:http"
import { WorkerConfig } from "./WorkerConfig.ts"
import { WorkerStatus } from "./WorkerStatus.ts"

export const LIVENESS_PORT_ENV = "OPEN_COWORK_CLOUD_LIVENESS_PORT"

/**
 * `/healthz`, `/livez`, `/readyz` and `/metrics` for a process without the web API (no auth, like the web
 * role's probes; bind the port to the pod network only). `/readyz` is 503 with a `draining` check once shutdown
 * begins, so the orchestrator stops counting the worker while it finishes its sessions, and while its object store
 * or secret key is not the deployment's (`object_store`, `secret_adapter`: every restore would fail).
 */
const liveness = Effect.gen(function*() {
  const config = yield* WorkerConfig
  return HttpServerResponse.jsonUnsafe({ ok: true, role: "worker", profileName: config.profileName })
})

export const routes = Layer.mergeAll(
  HttpRouter.add("GET", "/healthz", liveness),
  HttpRouter.add("GET", "/livez", liveness),
  HttpRouter.add("GET", "/readyz", Effect.gen(function*() {
    const config = yield* WorkerConfig
    const status = yield* WorkerStatus
    const checks = [...yield* Effect.all([
      ReadinessChecks.controlPlane,
      ReadinessChecks.roleDependencies,
      objectStoreCheck,
      secretAdapterCheck
    ], { concurrency: "unbounded" })]
    if (yield* Ref.get(status.draining)) checks.push({ name: "draining", status: "error", detail: "shutting down" })
    const body: Readiness = { ok: checks.every((check) => check.status === "ok"), role: "worker", profileName: config.profileName, checks }
    return HttpServerResponse.jsonUnsafe(body, { status: body.ok ? 200 : 503 })
  })),
  HttpRouter.add("GET", "/metrics", Effect.gen(function*() {
    const metrics = yield* Metrics
    return HttpServerResponse.text(yield* metrics.exposition, { contentType: metrics.contentType })
  }))
)

/** Serves the probes on `OPEN_COWORK_CLOUD_HOST`:`OPEN_COWORK_CLOUD_LIVENESS_PORT` when the port is set; otherwise nothing listens. */
export const layer: Layer.Layer<
  never,
  Config.ConfigError | HttpServerError.ServeError,
  WorkerConfig | WorkerStatus | Metrics | SqlClient.SqlClient | ChangeFeed | ObjectStore | SecretAdapter | DeploymentMarkers
> = Layer.unwrap(Effect.gen(function*() {
  const port = yield* Config.option(Config.Int(LIVENESS_PORT_ENV))
  if (Option.isNone(port)) return Layer.empty
  const host = yield* ListenHost
  yield* Effect.logInfo("liveness server listening").pipe(Effect.annotateLogs({ host, port: port.value }))
  return HttpRouter.serve(routes, { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provide(NodeHttpServer.layer(createServer, { host, port: port.value }))
  )
}))
