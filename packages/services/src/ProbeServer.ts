import type { Readiness, ReadinessCheck } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { Config, Effect, Layer, Option } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { ListenHost } from "./ListenHost.ts"
import * as NodeServer from "./NodeServer.ts"

/** What a role without the web API reports on its probes. */
export interface ProbeOptions<R> {
  readonly role: Readiness["role"]
  readonly profileName: Effect.Effect<string, never, R>
  /** The role's `/readyz` checks (each a `Readiness.probe`: fixed text, safe to show unauthenticated). */
  readonly checks: Effect.Effect<ReadonlyArray<ReadinessCheck>, never, R>
  /** True once shutdown begins: `/readyz` adds a failing `draining` check, so the orchestrator stops counting it. */
  readonly draining: Effect.Effect<boolean, never, R>
}

/**
 * `/healthz`, `/livez`, `/readyz` and `/metrics` for a process without the web API (the worker, the scheduler): no
 * auth, like the web role's probes; bind the port to the pod network only. `/readyz` is 503 when a check fails.
 */
export const routes = <R>(options: ProbeOptions<R>) => {
  const liveness = Effect.map(options.profileName, (profileName) =>
    HttpServerResponse.jsonUnsafe({ ok: true, role: options.role, profileName }))
  return Layer.mergeAll(
    HttpRouter.add("GET", "/healthz", liveness),
    HttpRouter.add("GET", "/livez", liveness),
    HttpRouter.add("GET", "/readyz", Effect.gen(function*() {
      const checks = [...yield* options.checks]
      if (yield* options.draining) checks.push({ name: "draining", status: "error", detail: "shutting down" })
      const body: Readiness = {
        ok: checks.every((check) => check.status === "ok"),
        role: options.role,
        profileName: yield* options.profileName,
        checks
      }
      return HttpServerResponse.jsonUnsafe(body, { status: body.ok ? 200 : 503 })
    })),
    HttpRouter.add("GET", "/metrics", Effect.gen(function*() {
      const metrics = yield* Metrics
      return HttpServerResponse.text(yield* metrics.exposition, { contentType: metrics.contentType })
    }))
  )
}

/**
 * Serves `routes(options)` on `OPEN_COWORK_CLOUD_HOST`:`OPEN_COWORK_CLOUD_LIVENESS_PORT` when the port is set; otherwise
 * nothing listens. The server is `NodeServer`'s: a scraper's keep-alive connection does not hold the shutdown.
 */
export const layer = <R>(options: ProbeOptions<R>) =>
  Layer.unwrap(Effect.gen(function*() {
    const port = yield* Config.option(Config.Int("OPEN_COWORK_CLOUD_LIVENESS_PORT"))
    if (Option.isNone(port)) return Layer.empty
    const host = yield* ListenHost
    yield* Effect.logInfo("liveness server listening").pipe(Effect.annotateLogs({ host, port: port.value }))
    return HttpRouter.serve(routes(options), { disableLogger: true, disableListenLog: true }).pipe(
      Layer.provide(NodeServer.layerOn(port.value, { host }))
    )
  }))
