import type {
  ChannelBinding,
  ChannelBindingStatus,
  ChannelCursor,
  DeliveryEventType,
  DeliveryKind,
  DeliveryStatus,
  ChannelIdentity,
  ChannelProviderKind,
  ChannelRoute,
  ClaimLost,
  Conflict,
  CreateChannelBindingBody,
  InboundPolicy,
  NotFound,
  ProviderEventClaim,
  ProviderEventKind,
  ProviderEventOutcome,
  Session
} from "@cowork/domain"
import { Context, Effect, Layer } from "effect"
import { makeChannelStoreMemory } from "./ChannelStoreMemory.ts"
import { MemoryDatabase } from "./MemoryDatabase.ts"

export interface BindingPatch {
  readonly displayName?: string | undefined
  readonly externalTarget?: string | undefined
  readonly status?: ChannelBindingStatus | undefined
  readonly statusDetail?: string | null | undefined
  readonly settings?: Record<string, unknown> | undefined
  readonly credentialRef?: string | null | undefined
  readonly inboundCredentialRef?: string | null | undefined
  readonly inboundPolicy?: InboundPolicy | undefined
}

export interface CursorWrite {
  readonly channelBindingId: string
  readonly name: string
  readonly value: string
  /** `undefined`: write unconditionally; `null`: only if the cursor does not exist; a string: only if it holds it. */
  readonly expectedValue?: string | null | undefined
}

/**
 * Channel bindings and what hangs off them: session routes (one per external chat / thread), identities (external
 * user → org member), provider-event claims (an inbound update is processed once across replicas and retries),
 * cursors, and which bindings a gateway token serves. Every call is org-scoped: another org's object is `NotFound`.
 * The outbox (deliveries) is `DeliveryFeed`; deliveries are written by the event log's append.
 */
export class ChannelStore extends Context.Service<ChannelStore, {
  /** `Conflict` when the org already has a binding for this provider id and target. */
  readonly createBinding: (orgId: string, input: CreateChannelBindingBody) => Effect.Effect<ChannelBinding, Conflict>
  /** Oldest first; with `bindingIds`, only those. */
  readonly listBindings: (orgId: string, bindingIds?: ReadonlyArray<string> | undefined) => Effect.Effect<ReadonlyArray<ChannelBinding>>
  readonly getBinding: (orgId: string, bindingId: string) => Effect.Effect<ChannelBinding, NotFound>
  readonly updateBinding: (orgId: string, bindingId: string, patch: BindingPatch) => Effect.Effect<ChannelBinding, NotFound | Conflict>
  /** Deletes the binding with its routes, deliveries, provider events, cursors and gateway grants. */
  readonly deleteBinding: (orgId: string, bindingId: string) => Effect.Effect<ChannelBinding, NotFound>

  readonly listRoutes: (orgId: string, bindingId: string) => Effect.Effect<ReadonlyArray<ChannelRoute>, NotFound>
  /** `NotFound` for an unknown binding or session; `Conflict` when the thread already has a session. */
  readonly bindSession: (
    orgId: string,
    bindingId: string,
    externalThreadId: string,
    sessionId: string
  ) => Effect.Effect<ChannelRoute, NotFound | Conflict>
  readonly unbindSession: (orgId: string, bindingId: string, routeId: string) => Effect.Effect<ChannelRoute, NotFound>
  /**
   * The thread's route, or a new one to a session made by `createSession` (the thread's first message). Concurrent
   * first messages of one thread get the same route and session.
   */
  readonly routeFor: <E>(
    orgId: string,
    bindingId: string,
    externalThreadId: string,
    createSession: Effect.Effect<Session, E>
  ) => Effect.Effect<{ readonly route: ChannelRoute; readonly created: boolean }, NotFound | E>

  readonly createIdentity: (orgId: string, input: {
    readonly providerKind: ChannelProviderKind
    readonly providerId: string
    readonly externalUserId: string
    readonly accountId: string
    readonly displayName?: string | undefined
  }) => Effect.Effect<ChannelIdentity, Conflict>
  readonly listIdentities: (orgId: string) => Effect.Effect<ReadonlyArray<ChannelIdentity>>
  readonly deleteIdentity: (orgId: string, identityId: string) => Effect.Effect<ChannelIdentity, NotFound>
  readonly findIdentity: (
    orgId: string,
    providerKind: ChannelProviderKind,
    providerId: string,
    externalUserId: string
  ) => Effect.Effect<ChannelIdentity | undefined>

  /**
   * Claims an inbound provider event of a binding for `ttlMs` (durable, shared by every replica): `claimed` with a
   * token, `in_progress` while another claim is live, `completed` once done. An expired claim is claimed afresh.
   * Kind `signature` (a signed request's digest) the same: completed (`accepted`) once its request was handled, a
   * replay is then `completed` for good; released, or left to expire, when the request was not handled (the cloud
   * was unavailable), so the provider's retry of the same signed request is accepted.
   */
  readonly claimProviderEvent: (orgId: string, input: {
    readonly channelBindingId: string
    readonly providerEventId: string
    readonly kind: ProviderEventKind
    readonly ttlMs: number
    readonly claimedBy: string
  }) => Effect.Effect<ProviderEventClaim, NotFound>
  /** Fenced by the claim token: `ClaimLost` when the claim expired or another holder took it. */
  readonly completeProviderEvent: (orgId: string, input: {
    readonly channelBindingId: string
    readonly providerEventId: string
    readonly claimToken: string
    readonly outcome: ProviderEventOutcome
  }) => Effect.Effect<ProviderEventClaim, NotFound | ClaimLost>

  /**
   * Retention of the provider-event claims (every org): deletes at most `limit` rows — signatures completed more than
   * `signatureRetentionMs` ago (a replay that old is refused by its timestamp anyway), updates / callbacks completed
   * more than `eventRetentionMs` ago (past any provider's retries), and claims abandoned (expired, never completed)
   * more than `eventRetentionMs` ago. Returns how many.
   */
  readonly pruneProviderEvents: (retention: {
    readonly signatureRetentionMs: number
    readonly eventRetentionMs: number
    readonly limit: number
  }) => Effect.Effect<number>

  readonly listCursors: (orgId: string, bindingIds: ReadonlyArray<string> | undefined) => Effect.Effect<ReadonlyArray<ChannelCursor>>
  /** `Conflict` when `expectedValue` does not match; `NotFound` for an unknown binding. */
  readonly putCursor: (orgId: string, write: CursorWrite, updatedBy: string) => Effect.Effect<ChannelCursor, NotFound | Conflict>

  /** Binds a gateway token to bindings (all must be the org's: `NotFound` otherwise, nothing granted). */
  readonly grantGatewayToken: (orgId: string, tokenId: string, bindingIds: ReadonlyArray<string>) => Effect.Effect<void, NotFound>
  /** The bindings a gateway token serves (empty for any other token). */
  readonly gatewayBindings: (orgId: string, tokenId: string) => Effect.Effect<ReadonlyArray<string>>
  readonly listGatewayGrants: (orgId: string) => Effect.Effect<ReadonlyMap<string, ReadonlyArray<string>>>
}>()("cowork/ChannelStore") {
  static readonly layerMemory: Layer.Layer<ChannelStore, never, MemoryDatabase> = Layer.effect(
    ChannelStore,
    Effect.map(Effect.service(MemoryDatabase), makeChannelStoreMemory)
  )
}

// ---------------------------------------------------------------------------------------------------------------
// The memory tables (part of `MemoryDatabase`)

export interface MemoryDelivery {
  readonly id: string
  readonly orgId: string
  readonly channelBindingId: string
  readonly routeId: string
  readonly externalThreadId: string | null
  readonly sessionId: string
  readonly eventId: string
  readonly eventSequence: number
  readonly eventType: DeliveryEventType
  readonly kind: DeliveryKind
  readonly payload: unknown
  readonly idempotencyKey: string
  readonly createdAt: number
  status: DeliveryStatus
  attempts: number
  maxAttempts: number
  nextAttemptAt: number
  claimExpiresAt: number | null
  claimToken: string | null
  lastClaimedBy: string | null
  lastClaimedReplica: string | null
  lastError: string | null
  providerMessageId: string | null
  updatedAt: number
  sentAt: number | null
}

export interface MemoryProviderEvent {
  readonly orgId: string
  readonly kind: ProviderEventKind
  status: "claimed" | "completed"
  claimToken: string | null
  claimExpiresAt: number | null
  outcome: string | null
  completedAt?: number | null
}

export interface MemoryChannelTables {
  readonly bindings: Map<string, ChannelBinding & { readonly orgId: string }>
  readonly routes: Map<string, ChannelRoute & { readonly orgId: string }>
  readonly identities: Map<string, ChannelIdentity & { readonly orgId: string }>
  /** In insertion order. */
  readonly deliveries: Array<MemoryDelivery>
  /** Keyed by `bindingId \u0000 providerEventId`. */
  readonly providerEvents: Map<string, MemoryProviderEvent>
  /** Keyed by `bindingId \u0000 name`. */
  readonly cursors: Map<string, ChannelCursor & { readonly orgId: string }>
  /** tokenId → its org and bindings. */
  readonly gatewayGrants: Map<string, { readonly orgId: string; readonly bindingIds: Set<string> }>
}
