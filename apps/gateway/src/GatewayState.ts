import { Clock, Context, Effect, Layer, Ref } from "effect"
import type { GatewayScope } from "./CloudChannels.ts"

export interface FeedState {
  /** The push stream to the cloud is open. */
  readonly streamConnected: boolean
  /** The last claim request was answered. */
  readonly lastClaimOk: boolean
  readonly lastError: string | null
}

export type ScopeState =
  | { readonly _tag: "Unknown" }
  | { readonly _tag: "Known"; readonly scope: GatewayScope }
  | { readonly _tag: "Failed"; readonly error: string }

/** This gateway process's state: started, draining (readiness 503), the feed's health, the token's scope, sends in flight. */
export class GatewayState extends Context.Service<GatewayState, {
  readonly startedAtMs: number
  readonly started: Ref.Ref<boolean>
  readonly draining: Ref.Ref<boolean>
  readonly feed: Ref.Ref<FeedState>
  readonly scope: Ref.Ref<ScopeState>
  readonly inFlight: Ref.Ref<number>
}>()("cowork/gateway/GatewayState") {
  static readonly layer = Layer.effect(
    GatewayState,
    Effect.gen(function*() {
      return GatewayState.of({
        startedAtMs: yield* Clock.currentTimeMillis,
        started: yield* Ref.make(false),
        draining: yield* Ref.make(false),
        feed: yield* Ref.make<FeedState>({ streamConnected: false, lastClaimOk: false, lastError: null }),
        scope: yield* Ref.make<ScopeState>({ _tag: "Unknown" }),
        inFlight: yield* Ref.make(0)
      })
    })
  )
}

/** Ready: started, not draining, the feed answering and its push stream open. */
export const feedHealthy = (feed: FeedState): boolean => feed.streamConnected && feed.lastClaimOk
