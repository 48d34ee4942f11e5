import { explainStartupFailure, Logging, Metrics, Tracing } from "@cowork/observability"
import { Database } from "@cowork/postgres"
import { LocalKeyFileSecretAdapter } from "@cowork/secrets"
import { ObjectStoreConfig } from "@cowork/storage"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer } from "effect"
import * as WorkerAdapters from "./WorkerAdapters.ts"
import * as WorkerRole from "./WorkerRole.ts"

/** The worker role alone (`cowork worker` is the usual entry point); needs `OPEN_COWORK_DATABASE_URL`. */
const database = Layer.unwrap(Effect.map(Database.resolveUrl(false), (url) => Database.layer({ url, applicationName: "cowork-worker" })))

WorkerRole.layer.pipe(
  Layer.provide(WorkerAdapters.layerPg),
  Layer.provide([ObjectStoreConfig.layerConfig, LocalKeyFileSecretAdapter.layerConfig]),
  Layer.provideMerge(Database.layerMigrate.pipe(Layer.provideMerge(database))),
  Layer.provide([Metrics.layer("worker"), Tracing.layer("worker"), Logging.layer("worker")]),
  Layer.launch,
  explainStartupFailure,
  Effect.provide(Logging.layer("worker")),
  NodeRuntime.runMain
)
