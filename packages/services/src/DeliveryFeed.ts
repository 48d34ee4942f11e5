import {
  type ChannelDelivery,
  type ClaimedDelivery,
  type ClaimLost,
  type Conflict,
  DEFAULT_DELIVERY_MAX_ATTEMPTS,
  type DeliveryAckOutcome,
  type DeliveryStatus,
  type Forbidden,
  type NotFound
} from "@cowork/domain"
import { Context, Effect, Layer, type Scope, type Stream } from "effect"
import { makeDeliveryFeedMemory } from "./DeliveryFeedMemory.ts"
import { MemoryDatabase } from "./MemoryDatabase.ts"

/** The server's delivery rules: every store applies them, so a gateway cannot retry more or sooner than this. */
export interface DeliveryFeedOptions {
  /** The claim (one attempt each) that reaches this and then fails — by a `failed` ack or an expired claim — is `dead`. */
  readonly maxAttempts: number
  /** Backoff after attempt n: `min(maxMs, baseMs · 2^(n-1))`, jittered to 50-100 %; a provider's `retryAfterMs` is a floor. */
  readonly backoffBaseMs: number
  readonly backoffMaxMs: number
  /** Expired claims returned to the feed per reap (the drain cap). */
  readonly reapLimit: number
}

export const defaultDeliveryFeedOptions: DeliveryFeedOptions = {
  maxAttempts: DEFAULT_DELIVERY_MAX_ATTEMPTS,
  backoffBaseMs: 2_000,
  backoffMaxMs: 600_000,
  reapLimit: 500
}

/** The wait before the attempt after `attempts` failed ones, given a jitter draw in [0, 1). */
export const deliveryBackoffMs = (
  options: DeliveryFeedOptions,
  attempts: number,
  jitter: number,
  retryAfterMs: number | undefined
): number => {
  const exponential = Math.min(options.backoffMaxMs, options.backoffBaseMs * 2 ** Math.max(0, Math.min(attempts - 1, 30)))
  const jittered = Math.round(exponential * (0.5 + jitter / 2))
  return Math.min(options.backoffMaxMs, Math.max(jittered, retryAfterMs ?? 0))
}

/** Longest stored `lastError`; it is redacted before it is stored. */
export const MAX_DELIVERY_ERROR_LENGTH = 500

/** Which deliveries a caller reaches: its org's, and with `bindingIds` only those bindings' (a gateway token's). */
export interface DeliveryScope {
  readonly orgId: string
  readonly bindingIds?: ReadonlyArray<string> | undefined
}

export interface DeliveryPage {
  readonly deliveries: ReadonlyArray<ChannelDelivery>
  readonly nextCursor: string | null
  readonly totalEstimate: number
}

export interface DeliveryClaim {
  readonly deliveries: ReadonlyArray<ClaimedDelivery>
  /**
   * Due first attempts not claimed because the org's `channel_deliveries_per_hour` is used up: they stay `pending`
   * with `nextAttemptAt` moved to the end of the clock hour (each one is a quota rejection).
   */
  readonly deferredByQuota: number
}

export interface DeliveryReapResult {
  readonly returned: number
  readonly dead: number
  /** The drain cap was reached: more expired claims may be waiting. */
  readonly capped: boolean
}

/** A binding's delivery became claimable (NOTIFY in production). */
export interface DeliveryNotice {
  readonly orgId: string
  readonly channelBindingId: string
}

/**
 * The outbox a gateway drains (deliveries are inserted by the event log's append, in the same transaction as their
 * event). Claims are fenced by a claim token and a TTL by the store's clock: an ack or renewal by a caller whose
 * claim expired or was re-claimed is `ClaimLost` and changes nothing. The attempt cap and the backoff are applied
 * here, never by the client.
 */
export class DeliveryFeed extends Context.Service<DeliveryFeed, {
  /**
   * Claims up to `limit` due deliveries (`pending` / `failed` with `nextAttemptAt` passed) of the scope's ACTIVE
   * bindings, oldest due first, skipping ones another claimer holds; each claim is one attempt. With
   * `deliveriesPerHour`, a delivery's FIRST attempt (attempts 0: new, or reset by a retry) is counted in the org's
   * clock-hour window in the same statement; first attempts past the quota are deferred to the window's end, never
   * claimed (later attempts of an admitted delivery are not counted again).
   */
  readonly claim: (scope: DeliveryScope, input: {
    readonly limit: number
    readonly ttlMs: number
    readonly claimedBy: string
    readonly replica?: string | undefined
    readonly deliveriesPerHour?: number | undefined
  }) => Effect.Effect<DeliveryClaim>
  readonly renew: (scope: DeliveryScope, deliveryId: string, claimToken: string, ttlMs: number) => Effect.Effect<ChannelDelivery, NotFound | ClaimLost>
  /** `failed` → `failed` with the next attempt scheduled, or `dead` at the cap; `error` is stored redacted. */
  readonly ack: (scope: DeliveryScope, deliveryId: string, input: {
    readonly claimToken: string
    readonly outcome: DeliveryAckOutcome
    readonly error?: string | undefined
    readonly retryAfterMs?: number | undefined
    readonly providerMessageId?: string | undefined
  }) => Effect.Effect<ChannelDelivery, NotFound | ClaimLost>
  /**
   * `failed` / `dead` → `pending` now, attempts reset. With `lastClaimedBy`, only a delivery that token claimed last
   * (`Forbidden` otherwise). `Conflict` for a delivery in another status.
   */
  readonly retry: (scope: DeliveryScope, deliveryId: string, lastClaimedBy?: string | undefined) => Effect.Effect<ChannelDelivery, NotFound | Forbidden | Conflict>
  /** `pending` / `failed` / `claimed` → `dead` (a live claim's ack is then `ClaimLost`). */
  readonly deadLetter: (
    scope: DeliveryScope,
    deliveryId: string,
    reason: string | undefined,
    lastClaimedBy?: string | undefined
  ) => Effect.Effect<ChannelDelivery, NotFound | Forbidden | Conflict>
  readonly get: (scope: DeliveryScope, deliveryId: string) => Effect.Effect<ChannelDelivery, NotFound>
  /** Newest first; `cursor` is the last id of the previous page. */
  readonly list: (scope: DeliveryScope, query: {
    readonly status?: DeliveryStatus | undefined
    readonly channelBindingId?: string | undefined
    readonly limit: number
    readonly cursor?: string | undefined
  }) => Effect.Effect<DeliveryPage>
  /** Returns at most `reapLimit` expired claims to `pending` (or `dead` at the cap). */
  readonly reap: Effect.Effect<DeliveryReapResult>
  /** Deliveries that became claimable, as they happen (a subscriber catches up by claiming). */
  readonly notices: Effect.Effect<Stream.Stream<DeliveryNotice>, never, Scope.Scope>
  /** Per status: one org's, or every org's (`undefined`: a platform operator's diagnostics). */
  readonly countsByStatus: (orgId: string | undefined) => Effect.Effect<Readonly<Record<DeliveryStatus, number>>>
}>()("cowork/DeliveryFeed") {
  static readonly layerMemoryWith = (options: DeliveryFeedOptions): Layer.Layer<DeliveryFeed, never, MemoryDatabase> =>
    Layer.effect(DeliveryFeed, Effect.map(Effect.service(MemoryDatabase), (db) => makeDeliveryFeedMemory(db, options)))

  static readonly layerMemory: Layer.Layer<DeliveryFeed, never, MemoryDatabase> = DeliveryFeed.layerMemoryWith(defaultDeliveryFeedOptions)
}
