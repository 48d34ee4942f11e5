import { explainStartupFailure, Logging, Metrics, Tracing } from "@cowork/observability"
import type { ObjectStore, SecretAdapter } from "@cowork/services"
import { LocalKeyFileSecretAdapter } from "@cowork/secrets"
import { ObjectStoreConfig } from "@cowork/storage"
import * as WebRole from "@cowork/web"
import * as WorkerRole from "@cowork/worker"
import { PgChangeFeed, PgHeartbeats, PgQuotas, PgWorkflowStore } from "@cowork/postgres"
import { SchedulerConfig, SchedulerRole } from "@cowork/scheduler"
import { type Effect, Layer } from "effect"
import * as ControlPlaneDatabase from "./ControlPlaneDatabase.ts"
import * as OwnerBootstrap from "./OwnerBootstrap.ts"

export type RoleName = "web" | "worker" | "scheduler" | "all"

/** The web role, reporting the PROCESS role (`all` under `cowork up`) on health and runtime-status routes. */
const web = (role: "web" | "all") =>
  Layer.mergeAll(WebRole.layerAs(role), OwnerBootstrap.layer).pipe(Layer.provide(WebRole.layerPgAdapters))
const worker = WorkerRole.layer.pipe(Layer.provide(WorkerRole.WorkerAdapters.layerPg))
// The change feed is the same layer the web and worker roles use: `cowork up` keeps one listener per channel.
const schedulerAdapters = Layer.mergeAll(PgWorkflowStore.layerConfig, PgHeartbeats.layer, PgQuotas.layer, PgChangeFeed.layer, SchedulerConfig.layerConfig)
/** The split scheduler serves its probes on the liveness port; inside `up` the web role answers them. */
const scheduler = SchedulerRole.layer.pipe(Layer.provide(schedulerAdapters))
const schedulerInProcess = SchedulerRole.layerCore.pipe(Layer.provide(schedulerAdapters))

// Serving roles never attach to another process's embedded cluster: `up` starts (and publishes) its own.
const database = (role: RoleName) =>
  ControlPlaneDatabase.layer({ embedded: role === "all", applicationName: `cowork-${role}`, attach: false })

/**
 * JSON logs on stderr, OTLP traces when configured, and the process's ONE metrics registry: in `cowork up` the web
 * and worker roles record into the same registry, which web serves at `/metrics`.
 */
const observability = (role: RoleName) =>
  Layer.mergeAll(Metrics.layer(role), Tracing.layer(role), Logging.layerStderr(role))

/**
 * The process's one object store (artifacts on web, checkpoints on workers; OPEN_COWORK_OBJECT_STORE_URI) and one
 * secret adapter (checkpoint keys on workers, the `secret_adapter` readiness probe on web;
 * OPEN_COWORK_CLOUD_SECRET_KEY_REF).
 */
const run = (
  role: RoleName,
  roleLayer: Layer.Layer<never, unknown, Layer.Success<ReturnType<typeof database>> | Metrics | ObjectStore | SecretAdapter>
) =>
  Layer.launch(roleLayer.pipe(
    Layer.provide(ObjectStoreConfig.layerConfig),
    Layer.provide(LocalKeyFileSecretAdapter.layerConfig),
    Layer.provide(database(role)),
    Layer.provide(observability(role))
  )).pipe(explainStartupFailure)

/**
 * Runs the process for a role, adapters and database included, until interrupted. Split roles need
 * `OPEN_COWORK_DATABASE_URL`; the all-in-one falls back to the embedded Postgres. On shutdown the roles stop first
 * (the worker drains and releases its leases), then the pool closes, then an embedded Postgres stops. A start the
 * operator can fix (port in use, data dir held by another process, no database URL) ends with one log line naming
 * the setting and exit code 1.
 */
export const launch = (role: RoleName): Effect.Effect<never, unknown> => {
  switch (role) {
    case "web":
      return run(role, web("web"))
    case "worker":
      return run(role, worker)
    case "scheduler":
      return run(role, scheduler)
    case "all":
      return run(role, Layer.mergeAll(web("all"), worker, schedulerInProcess))
  }
}
