import { ReadinessChecks } from "@cowork/postgres"
import { secretAdapterCheck } from "@cowork/secrets"
import { type ChangeFeed, type DeploymentMarkers, type ObjectStore, ProbeServer, type SecretAdapter } from "@cowork/services"
import { objectStoreCheck } from "@cowork/storage"
import { Effect, Ref } from "effect"
import type { SqlClient } from "effect/sql"
import { WorkerConfig } from "./WorkerConfig.ts"
import { WorkerStatus } from "./WorkerStatus.ts"

/**
 * The worker's probes (`ProbeServer`). `/readyz` is 503 with a `draining` check once shutdown begins, so the
 * orchestrator stops counting the worker while it finishes its sessions, and while its object store or secret key
 * is not the deployment's (`object_store`, `secret_adapter`: every restore would fail).
 */
const probes: ProbeServer.ProbeOptions<
  WorkerConfig | WorkerStatus | SqlClient.SqlClient | ChangeFeed | ObjectStore | SecretAdapter | DeploymentMarkers
> = {
  role: "worker",
  profileName: Effect.gen(function*() {
    return (yield* WorkerConfig).profileName
  }),
  checks: Effect.all([
    ReadinessChecks.controlPlane,
    ReadinessChecks.roleDependencies,
    objectStoreCheck,
    secretAdapterCheck
  ], { concurrency: "unbounded" }),
  draining: Effect.gen(function*() {
    return yield* Ref.get((yield* WorkerStatus).draining)
  })
}

export const routes = ProbeServer.routes(probes)

/** Serves the probes on `OPEN_COWORK_CLOUD_HOST`:`OPEN_COWORK_CLOUD_LIVENESS_PORT` when the port is set; otherwise nothing listens. */
export const layer = ProbeServer.layer(probes)
