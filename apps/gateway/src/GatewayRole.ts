import { RateLimiter } from "@cowork/services"
import { Effect, Layer, Ref, Schedule } from "effect"
import { BindingCredentials } from "./BindingCredentials.ts"
import { CloudChannels } from "./CloudChannels.ts"
import * as DeliveryLoop from "./DeliveryLoop.ts"
import { GatewayConfig } from "./GatewayConfig.ts"
import * as GatewayHttp from "./GatewayHttp.ts"
import { GatewayState } from "./GatewayState.ts"
import { Providers } from "./Providers.ts"

/** Asks the cloud who this gateway's token is (its bindings) at start and every minute; a failure is logged, never fatal. */
const scopeRefresh = Effect.gen(function*() {
  const cloud = yield* CloudChannels
  const state = yield* GatewayState
  yield* Effect.forkScoped(
    cloud.whoami.pipe(
      Effect.tap((scope) => Ref.set(state.scope, { _tag: "Known", scope })),
      Effect.catchTag("CloudUnavailable", (error) =>
        Effect.andThen(
          Ref.set(state.scope, { _tag: "Failed", error: error.message }),
          Effect.logWarning("the cloud did not confirm the gateway token").pipe(Effect.annotateLogs({ error: error.message }))
        )),
      Effect.repeat(Schedule.spaced("60 seconds"))
    )
  )
})

/**
 * Reports a provider whose credential is refused to the cloud (its bindings go `auth_required`, so admins see it) and
 * reports it `active` again once it works (also after a restart with a rotated credential); checked every few
 * seconds, the cloud called only on a change.
 */
const statusReports = Effect.gen(function*() {
  const cloud = yield* CloudChannels
  const providers = yield* Providers
  const reported = new Map<string, "active" | "auth_required">()
  yield* Effect.forkScoped(
    Effect.gen(function*() {
      for (const status of yield* providers.statuses) {
        const wanted = status.state === "auth_failed" ? "auth_required" : status.state === "healthy" ? "active" : undefined
        if (wanted === undefined) continue
        // The first healthy probe reports `active` too: a binding left `auth_required` before a rotation and restart
        // recovers (the cloud is only called for bindings whose status differs).
        if (reported.get(status.id) === wanted) continue
        yield* cloud.reportProviderStatus(status.id, wanted, status.detail).pipe(
          Effect.tap(() => Effect.sync(() => reported.set(status.id, wanted))),
          Effect.catchTag("CloudUnavailable", (error) =>
            Effect.logWarning("provider status not reported to the cloud").pipe(Effect.annotateLogs({ provider_id: status.id, error: error.message })))
        )
      }
    }).pipe(Effect.repeat(Schedule.spaced("5 seconds")))
  )
})

/**
 * The gateway role without its HTTP server: providers (probed at start), the delivery loop, the scope refresh.
 * Needs `GatewayConfig`, `CloudChannels` and `Metrics`. On shutdown the delivery loop stops claiming and lets sends
 * in flight finish within OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS.
 */
const layerCore = Layer.effectDiscard(Effect.gen(function*() {
  const config = yield* GatewayConfig
  const state = yield* GatewayState
  yield* scopeRefresh
  yield* statusReports
  yield* DeliveryLoop.run
  yield* Ref.set(state.started, true)
  yield* Effect.logInfo("gateway started").pipe(Effect.annotateLogs({
    gateway_id: config.gatewayId,
    providers: config.providers.map((entry) => `${entry.config.id}:${entry.config.kind}`).join(",")
  }))
}))

/** The gateway role: `layerCore` plus its HTTP server on OPEN_COWORK_GATEWAY_PORT. */
export const layer = GatewayHttp.layer.pipe(
  Layer.provideMerge(layerCore),
  Layer.provideMerge(Providers.layer),
  Layer.provideMerge(BindingCredentials.layer),
  Layer.provideMerge(GatewayState.layer),
  Layer.provide(RateLimiter.layerMemory)
)
