import { ReadinessChecks } from "@cowork/postgres"
import { ProbeServer } from "@cowork/services"
import { Effect, Ref } from "effect"
import type { SqlClient } from "effect/sql"
import { SchedulerConfig } from "./SchedulerConfig.ts"
import { SchedulerStatus } from "./SchedulerStatus.ts"

/** The scheduler's probes (`ProbeServer`): ready once the migrations are applied; 503 + `draining` during shutdown. */
const probes: ProbeServer.ProbeOptions<SchedulerConfig | SchedulerStatus | SqlClient.SqlClient> = {
  role: "scheduler",
  profileName: Effect.gen(function*() {
    return (yield* SchedulerConfig).profileName
  }),
  checks: Effect.map(ReadinessChecks.controlPlane, (check) => [check]),
  draining: Effect.gen(function*() {
    return yield* Ref.get((yield* SchedulerStatus).draining)
  })
}

/** Serves the probes on `OPEN_COWORK_CLOUD_HOST`:`OPEN_COWORK_CLOUD_LIVENESS_PORT` when the port is set; otherwise nothing listens. */
export const layer = ProbeServer.layer(probes)
