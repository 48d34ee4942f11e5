import * as PgChangeFeed from "@cowork/postgres/PgChangeFeed"
import * as PgCommandQueue from "@cowork/postgres/PgCommandQueue"
import * as PgEventLog from "@cowork/postgres/PgEventLog"
import * as PgHeartbeats from "@cowork/postgres/PgHeartbeats"
import * as PgLeaseStore from "@cowork/postgres/PgLeaseStore"
import * as PgSessionStore from "@cowork/postgres/PgSessionStore"
import * as PgTokens from "@cowork/postgres/PgTokens"
import { ScriptedRuntime } from "@cowork/runtime"
import * as WebRole from "@cowork/web"
import * as WorkerRole from "@cowork/worker"
import { Layer } from "effect"
import * as ControlPlaneDatabase from "./ControlPlaneDatabase.ts"
import * as OwnerBootstrap from "./OwnerBootstrap.ts"

export type RoleName = "web" | "worker" | "all"

const webAdapters = Layer.mergeAll(PgSessionStore.layer, PgTokens.layer, PgEventLog.layer, PgChangeFeed.layer)

const workerAdapters = Layer.mergeAll(
  PgLeaseStore.layer,
  PgCommandQueue.layer,
  PgEventLog.layer,
  PgHeartbeats.layer,
  PgChangeFeed.layer,
  ScriptedRuntime.layerConfig
)

const web = Layer.mergeAll(WebRole.layer, OwnerBootstrap.layer).pipe(Layer.provide(webAdapters))
const worker = WorkerRole.layer.pipe(Layer.provide(workerAdapters))

/**
 * The process for a role, adapters and database included. Split roles need `OPEN_COWORK_DATABASE_URL`; the
 * all-in-one falls back to the embedded Postgres. Layer order on shutdown: roles stop first (the worker drains and
 * releases its leases), then the pool closes, then an embedded Postgres stops.
 */
export const layer = (role: RoleName) => {
  const roles = role === "web" ? web : role === "worker" ? worker : Layer.merge(web, worker)
  return roles.pipe(Layer.provide(ControlPlaneDatabase.layer({
    embedded: role === "all",
    applicationName: `cowork-${role}`
  })))
}
