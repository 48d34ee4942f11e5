import type { Metrics } from "@cowork/observability"
import type { AgentRuntime, ByokStore } from "@cowork/services"
import { Config, ConfigProvider, Effect, Layer } from "effect"
import * as ModelProxy from "./ModelProxy.ts"
import * as OpenCodeRuntime from "./OpenCodeRuntime.ts"
import * as ScriptedRuntime from "./ScriptedRuntime.ts"

const RUNTIME_KINDS = ["scripted", "opencode"] as const

/**
 * The worker's agent runtime, chosen by `OPEN_COWORK_CLOUD_RUNTIME` (`scripted`, the default, or `opencode`).
 * `opencode` runs `opencode serve` per session (see `OpenCodeRuntime.config`) behind the loopback model proxy, which
 * reveals the org's key for `OPEN_COWORK_CLOUD_OPENCODE_PROVIDER` (default `openai`) from `ByokStore`.
 */
export const layerConfig: Layer.Layer<AgentRuntime, Config.ConfigError, Metrics | ByokStore> = Layer.unwrap(
  Effect.gen(function*() {
    const kind = yield* Config.String("OPEN_COWORK_CLOUD_RUNTIME").pipe(Config.withDefault("scripted"))
    if (kind === "scripted") return ScriptedRuntime.layerConfig
    if (kind !== "opencode") {
      return yield* Effect.fail(
        new Config.ConfigError(
          new ConfigProvider.SourceError({ message: `OPEN_COWORK_CLOUD_RUNTIME must be one of ${RUNTIME_KINDS.join(", ")}` })
        )
      )
    }
    const options = yield* OpenCodeRuntime.config
    const provider = yield* Config.String("OPEN_COWORK_CLOUD_OPENCODE_PROVIDER").pipe(Config.withDefault("openai"))
    return OpenCodeRuntime.layerProxied({
      root: options.root,
      binary: options.binary,
      startTimeoutMs: options.startTimeoutMs,
      model: options.model
    }).pipe(Layer.provide(ModelProxy.layerByok(provider)))
  })
)
