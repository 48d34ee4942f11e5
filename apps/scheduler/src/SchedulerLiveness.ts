import type { Readiness } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { migrationsApplied } from "@cowork/postgres"
import { ListenHost } from "@cowork/services"
import { NodeHttpServer } from "@effect/platform-node"
import { Config, Effect, Layer, Option, Ref } from "effect"
import { HttpRouter, type HttpServerError, HttpServerResponse } from "effect/http"
import type { SqlClient } from "effect/sql"
import { createServer } from "node:http"
import { SchedulerConfig } from "./SchedulerConfig.ts"
import { SchedulerStatus } from "./SchedulerStatus.ts"

const liveness = Effect.gen(function*() {
  const config = yield* SchedulerConfig
  return HttpServerResponse.jsonUnsafe({ ok: true, role: "scheduler", profileName: config.profileName })
})

/** `/healthz`, `/livez`, `/readyz` (migrations applied; 503 + `draining` during shutdown) and `/metrics`, no auth. */
export const routes = Layer.mergeAll(
  HttpRouter.add("GET", "/healthz", liveness),
  HttpRouter.add("GET", "/livez", liveness),
  HttpRouter.add("GET", "/readyz", Effect.gen(function*() {
    const config = yield* SchedulerConfig
    const status = yield* SchedulerStatus
    const applied = yield* migrationsApplied.pipe(Effect.orElseSucceed(() => false))
    const checks: Array<Readiness["checks"][number]> = [
      applied ? { name: "control_plane", status: "ok" } : { name: "control_plane", status: "error", detail: "database unreachable or migrations pending" }
    ]
    if (yield* Ref.get(status.draining)) checks.push({ name: "draining", status: "error", detail: "shutting down" })
    const body: Readiness = { ok: checks.every((check) => check.status === "ok"), role: "scheduler", profileName: config.profileName, checks }
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
  SchedulerConfig | SchedulerStatus | Metrics | SqlClient.SqlClient
> = Layer.unwrap(Effect.gen(function*() {
  const port = yield* Config.option(Config.Int("OPEN_COWORK_CLOUD_LIVENESS_PORT"))
  if (Option.isNone(port)) return Layer.empty
  const host = yield* ListenHost
  yield* Effect.logInfo("liveness server listening").pipe(Effect.annotateLogs({ host, port: port.value }))
  return HttpRouter.serve(routes, { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provide(NodeHttpServer.layer(createServer, { host, port: port.value }))
  )
}))
