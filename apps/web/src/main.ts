import { explainStartupFailure, Logging, Metrics, Tracing } from "@cowork/observability"
import { Database } from "@cowork/postgres"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer } from "effect"
import * as WebRole from "./WebRole.ts"

const database = Layer.unwrap(Effect.map(Database.resolveUrl(false), (url) => Database.layer({ url, applicationName: "cowork-web" })))

WebRole.layerPg.pipe(
  Layer.provide(Database.layerMigrate.pipe(Layer.provideMerge(database))),
  Layer.provide([Metrics.layer("web"), Tracing.layer("web"), Logging.layer("web")]),
  Layer.launch,
  explainStartupFailure,
  Effect.provide(Logging.layer("web")),
  NodeRuntime.runMain
)
