import { explainStartupFailure, Logging, Metrics, StartupRefused, Tracing } from "@cowork/observability"
import { Config, Effect, Layer } from "effect"
import * as CloudClient from "./CloudClient.ts"
import { GatewayConfig, GatewayConfigError } from "./GatewayConfig.ts"
import * as GatewayRole from "./GatewayRole.ts"

/**
 * The gateway process: the role over the cloud's API (OPEN_COWORK_GATEWAY_CLOUD_URL, OPEN_COWORK_GATEWAY_TOKEN), JSON
 * logs on stderr, its own metrics registry. No database: everything durable lives behind the web role. A setting
 * that is missing or wrong ends the start with one log line naming it and exit code 1.
 */
export const launch = Layer.launch(
  GatewayRole.layer.pipe(
    Layer.provide(Layer.provideMerge(CloudClient.layer, GatewayConfig.layerConfig)),
    Layer.provide(Layer.mergeAll(Metrics.layer("gateway"), Tracing.layer("gateway"), Logging.layerStderr("gateway")))
  )
).pipe(
  explainStartupFailure,
  Effect.catch((error) => {
    const message = error instanceof GatewayConfigError
      ? error.message
      : error instanceof Config.ConfigError
      ? `gateway configuration: ${error.message} (OPEN_COWORK_GATEWAY_CLOUD_URL and OPEN_COWORK_GATEWAY_TOKEN are required)`
      : undefined
    if (message === undefined) return Effect.fail(error)
    return Effect.logError(message).pipe(Effect.andThen(Effect.fail(new StartupRefused({ message }))))
  })
)
