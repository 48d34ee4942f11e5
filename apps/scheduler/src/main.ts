import { Logging, Metrics, Tracing } from "@cowork/observability"
import { Database, PgChangeFeed, PgHeartbeats, PgQuotas, PgWorkflowStore } from "@cowork/postgres"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer } from "effect"
import { SchedulerConfig } from "./SchedulerConfig.ts"
import * as SchedulerRole from "./SchedulerRole.ts"

/** The scheduler role alone (`cowork scheduler` is the usual entry point); needs `OPEN_COWORK_DATABASE_URL`. */
const database = Layer.unwrap(Effect.map(Database.resolveUrl(false), (url) => Database.layer({ url, applicationName: "cowork-scheduler" })))

SchedulerRole.layer.pipe(
  Layer.provide([PgWorkflowStore.layerConfig, PgHeartbeats.layer, PgQuotas.layer, PgChangeFeed.layer, SchedulerConfig.layerConfig]),
  Layer.provideMerge(Database.layerMigrate.pipe(Layer.provideMerge(database))),
  Layer.provide([Metrics.layer("scheduler"), Tracing.layer("scheduler"), Logging.layer("scheduler")]),
  Layer.launch,
  NodeRuntime.runMain
)
