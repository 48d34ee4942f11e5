import { ControlPlaneStatus } from "@cowork/services"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { authConfig, controlPlane } from "./ReadinessChecks.ts"

/** Owned leases by liveness (database clock), over the `owned` partial index: the operator's lease census. */
const leaseCensus = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql.unsafe<{ held: number; expired: number }>(
    `SELECT count(*) FILTER (WHERE expires_at > clock_timestamp())::int AS held,
       count(*) FILTER (WHERE expires_at <= clock_timestamp())::int AS expired
     FROM cloud_worker_leases WHERE worker_id IS NOT NULL`
  )
  return { held: Number(rows[0]?.held ?? 0), expiredUnreaped: Number(rows[0]?.expired ?? 0) }
})

export const layer = Layer.effect(
  ControlPlaneStatus,
  Effect.map(Effect.service(SqlClient.SqlClient), (sql) =>
    ControlPlaneStatus.of({
      controlPlane: Effect.provideService(controlPlane, SqlClient.SqlClient, sql),
      authConfig: Effect.provideService(authConfig, SqlClient.SqlClient, sql),
      leaseCensus: leaseCensus.pipe(Effect.orDie, Effect.provideService(SqlClient.SqlClient, sql))
    }))
)
