import { Api, NotReady, type ReadinessCheck } from "@cowork/domain"
import { migrationsApplied } from "@cowork/postgres"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { SqlClient } from "effect/sql"
import { WebLifecycle } from "./WebLifecycle.ts"

/** `/healthz`, `/livez` (the process loop is alive) and `/readyz` (dependencies reachable, not draining). */
export const layer = HttpApiBuilder.group(Api, "health", Effect.fn(function*(handlers) {
  const lifecycle = yield* WebLifecycle
  const sql = yield* SqlClient.SqlClient
  const liveness = () => Effect.succeed({ ok: true as const, role: lifecycle.role, profileName: lifecycle.profileName })

  const controlPlane = migrationsApplied.pipe(
    Effect.provideService(SqlClient.SqlClient, sql),
    Effect.timeout("3 seconds"),
    Effect.map((applied): ReadinessCheck =>
      applied
        ? { name: "control_plane", status: "ok" }
        : { name: "control_plane", status: "error", detail: "migrations pending" }
    ),
    Effect.catchCause(() => Effect.succeed<ReadinessCheck>({ name: "control_plane", status: "error", detail: "database unreachable" }))
  )

  return handlers.handleAll({
    healthz: liveness,
    livez: liveness,
    readyz: () =>
      Effect.gen(function*() {
        const checks: Array<ReadinessCheck> = [yield* controlPlane]
        if (yield* lifecycle.isDraining) checks.push({ name: "draining", status: "error", detail: "shutting down" })
        const body = { ok: checks.every((check) => check.status === "ok"), role: lifecycle.role, profileName: lifecycle.profileName, checks }
        if (!body.ok) return yield* new NotReady(body)
        return body
      })
  })
}))
