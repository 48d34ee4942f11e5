import { ControlPlaneStatus } from "@cowork/services"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { leaseCensus } from "./PgLeaseStore.ts"
import { authConfig, controlPlane } from "./ReadinessChecks.ts"

export const layer = Layer.effect(
  ControlPlaneStatus,
  Effect.map(Effect.service(SqlClient.SqlClient), (sql) =>
    ControlPlaneStatus.of({
      controlPlane: Effect.provideService(controlPlane, SqlClient.SqlClient, sql),
      authConfig: Effect.provideService(authConfig, SqlClient.SqlClient, sql),
      leaseCensus: leaseCensus.pipe(Effect.orDie, Effect.provideService(SqlClient.SqlClient, sql))
    }))
)
