import { Logging, Metrics, Tracing } from "@cowork/observability"
import { Database } from "@cowork/postgres"
import * as PgChangeFeed from "@cowork/postgres/PgChangeFeed"
import * as PgCommandQueue from "@cowork/postgres/PgCommandQueue"
import * as PgEventLog from "@cowork/postgres/PgEventLog"
import * as PgHeartbeats from "@cowork/postgres/PgHeartbeats"
import * as PgLeaseStore from "@cowork/postgres/PgLeaseStore"
import * as PgProjections from "@cowork/postgres/PgProjections"
import { ScriptedRuntime } from "@cowork/runtime"
import { LocalKeyFileSecretAdapter } from "@cowork/secrets"
import { CheckpointStore, ObjectStoreConfig } from "@cowork/storage"
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import * as WorkerRole from "./WorkerRole.ts"

/** The worker role alone (`cowork worker` is the usual entry point); needs `OPEN_COWORK_DATABASE_URL`. */
const database = Layer.unwrap(Effect.map(Database.resolveUrl(false), (url) => Database.layer({ url, applicationName: "cowork-worker" })))
const adapters = Layer.mergeAll(
  PgLeaseStore.layer,
  PgCommandQueue.layer,
  PgEventLog.layer,
  PgHeartbeats.layer,
  PgChangeFeed.layer,
  PgProjections.layer,
  ScriptedRuntime.layerConfig,
  CheckpointStore.layer.pipe(Layer.provide([LocalKeyFileSecretAdapter.layerConfig, ObjectStoreConfig.layerConfig]))
)

WorkerRole.layer.pipe(
  Layer.provide(adapters),
  Layer.provideMerge(Database.layerMigrate.pipe(Layer.provideMerge(database))),
  Layer.provide([Metrics.layer("worker"), Tracing.layer("worker"), Logging.layer("worker")]),
  Layer.launch,
  NodeRuntime.runMain
)
