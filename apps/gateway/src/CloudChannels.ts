import type { AnswerButton, AnswerRefusal, InboundMessage, ProviderKind } from "@cowork/channels"
import { Context, Data, type Effect, type Stream } from "effect"

/**
 * What the gateway needs from the cloud, in its own terms. The gateway holds no state of its own that matters:
 * claims, fencing, the attempt cap, backoff, replay keys and provider-event claims all live in Postgres behind the
 * web role's API, so any number of replicas can run. `CloudClient.layer` implements this over the typed client;
 * tests use an in-memory one.
 */

/** A delivery this gateway holds a claim on. `claimToken` fences renewals and the ack. */
export interface ClaimedDelivery {
  readonly id: string
  readonly channelBindingId: string
  readonly providerId: string
  readonly providerKind: ProviderKind
  readonly target: string
  readonly threadId?: string | undefined
  readonly eventType: string
  readonly text: string
  readonly payload?: unknown
  readonly buttons?: ReadonlyArray<AnswerButton> | undefined
  readonly idempotencyKey: string
  /** Attempts so far, this one included. */
  readonly attempt: number
  readonly claimToken: string
  /** When the cloud committed the event (and, in the same transaction, the delivery). */
  readonly committedAt: string
}

export type AckOutcome =
  | { readonly status: "sent" }
  | { readonly status: "failed"; readonly error: string; readonly retryAfterMs?: number | undefined }
  | { readonly status: "dead"; readonly error: string }

/** A delivery's outcome, to ack. */
export interface PendingAck {
  readonly delivery: ClaimedDelivery
  readonly outcome: AckOutcome
}

/** What the cloud made of an ack: a failed ack is `pending` again (retry scheduled) or `dead` at the server's cap. */
export interface AckResult {
  readonly status: "sent" | "pending" | "dead"
  readonly nextAttemptAt?: string | undefined
}

/** A delivery as the operator routes list it (no credential, redacted error). */
export interface DeliveryView {
  readonly id: string
  readonly channelBindingId: string
  readonly status: string
  readonly attempts: number
  readonly nextAttemptAt: string | null
  readonly lastClaimedBy: string | null
  readonly lastError: string | null
  readonly idempotencyKey: string
  readonly createdAt: string
}

/** Who this gateway's token is: the bindings it may serve, and what the cloud lets it do on the feed. */
export interface GatewayScope {
  readonly scope: string
  readonly tokenId: string
  readonly channelBindingIds: ReadonlyArray<string>
  readonly listAllowed: boolean
  readonly retryAllowed: boolean
  readonly deadLetterAllowed: boolean
}

export interface InboundResult {
  /**
   * `prompted`: a prompt (or answer) was queued; `duplicate`: this provider event was already handled;
   * `in_progress`: another replica holds its claim right now (the provider should retry); `unbound`: no binding for
   * the target; `refused`: the binding's policy or state refused it (done for good).
   */
  readonly status: "prompted" | "duplicate" | "in_progress" | "unbound" | "refused"
  readonly sessionId?: string | undefined
  /** `refused`: why, when the cloud said (an answer already given — by whom, where, when —, a stopped session, …). */
  readonly refusal?: AnswerRefusal | undefined
}

/**
 * Whether a pick may change what an ask's message shows: `admitted` (the user may answer and the ask still takes its
 * answer), `unbound` (no binding for the target), `refused` (with why, when the cloud said: not admitted, the binding
 * not active, answered already — by whom, where, when —, the session stopped, the turn ended).
 */
export type AnswerAdmission =
  | { readonly status: "admitted" }
  | { readonly status: "unbound" }
  | { readonly status: "refused"; readonly refusal?: AnswerRefusal | undefined }

export type SignatureClaim =
  | { readonly status: "claimed"; readonly settle: (handled: boolean) => Effect.Effect<void> }
  | { readonly status: "replayed" | "in_progress" }

/** The claim on a delivery expired (another gateway may hold it now): the renewal or ack was refused. */
export class ClaimLost extends Data.TaggedError("ClaimLost")<{ readonly deliveryId: string }> {}

/** The cloud did not answer usefully (network, 5xx, 503 draining, an unexpected answer). */
export class CloudUnavailable extends Data.TaggedError("CloudUnavailable")<{ readonly message: string; readonly status?: number | undefined }> {}

/** The cloud refused a retry / dead-letter in the delivery's current state (e.g. retrying a sent delivery). */
export class DeliveryConflict extends Data.TaggedError("DeliveryConflict")<{ readonly deliveryId: string; readonly message: string }> {}

/** An operator route asked for a delivery this gateway may not touch (another binding's, or not last claimed by it). */
export class DeliveryNotFound extends Data.TaggedError("DeliveryNotFound")<{ readonly deliveryId: string }> {}

export interface DeliveryQuery {
  readonly status?: string | undefined
  readonly channelBindingId?: string | undefined
  readonly limit?: number | undefined
}

/** A binding's own credential reference, and the org whose namespace it must resolve in. */
export interface BindingCredentialRef {
  readonly orgId: string
  readonly credentialRef: string
  /** The binding's provider id. */
  readonly providerId: string
}

/** Which of a binding's own credentials: the one it sends with (`credentialRef`), or its inbound secret (`inboundCredentialRef`). */
export type CredentialUse = "outbound" | "inbound"

export class CloudChannels extends Context.Service<CloudChannels, {
  readonly whoami: Effect.Effect<GatewayScope, CloudUnavailable>
  readonly claim: (limit: number, ttlMs: number) => Effect.Effect<ReadonlyArray<ClaimedDelivery>, CloudUnavailable>
  readonly renew: (delivery: ClaimedDelivery, ttlMs: number) => Effect.Effect<void, ClaimLost | CloudUnavailable>
  /**
   * Acks a batch (at most `MAX_ACKS_PER_BATCH`) in one request, each fenced by its claim token: one answer per ack in
   * the same order, `ClaimLost` for an ack the cloud refused (its claim expired or was taken over).
   */
  readonly ack: (acks: ReadonlyArray<PendingAck>) => Effect.Effect<ReadonlyArray<AckResult | ClaimLost>, CloudUnavailable>
  /** Ends when the cloud closes it; every element means "something may be due". */
  readonly wakeups: Stream.Stream<void, CloudUnavailable>
  /**
   * Claims a signed request's replay key, durably and shared by every replica, while the request is handled:
   * `claimed` (settle it: handled, the key is taken for good; not handled, released so the provider's retry of the
   * same signed request is accepted), `replayed` (handled before), `in_progress` (another replica handles it now).
   */
  readonly claimSignature: (providerId: string, key: string, channelBindingId?: string) => Effect.Effect<SignatureClaim, CloudUnavailable>
  /**
   * Claims the provider event, resolves the identity and the bound session, and prompts (idempotency key = provider
   * event id). `viaBinding`: the request came signed with that binding's own inbound secret, and may only reach that
   * binding (its target, or its id, named in the message); without it, a binding with its own inbound secret is
   * `unbound` (the provider-wide secret does not admit it).
   */
  readonly inbound: (providerId: string, providerKind: ProviderKind, message: InboundMessage, viaBinding?: string) => Effect.Effect<InboundResult, CloudUnavailable>
  /**
   * A plain message (no answer) in one request to the cloud: the signed request's replay key (`replayed`: accepted
   * before; `in_progress`: being handled elsewhere), the provider event's claim and the prompt, both claims completed
   * by the cloud — or released when it could not prompt (a `CloudUnavailable`), so the provider's retry is taken.
   */
  readonly message: (providerId: string, message: InboundMessage, replayKey: string | undefined, viaBinding?: string) => Effect.Effect<
    InboundResult | { readonly status: "replayed" },
    CloudUnavailable
  >
  /**
   * Whether the message's user may answer on its binding and the ask it names still takes an answer (the binding found
   * as `inbound` finds it, active, its `inboundPolicy` admitting the user, the ask neither answered nor closed) — for a
   * pick that only changes what the message shows, nothing is queued.
   */
  readonly mayAnswer: (providerId: string, message: InboundMessage, viaBinding?: string) => Effect.Effect<AnswerAdmission, CloudUnavailable>
  /**
   * The binding's `credentialRef` (a reference, never a secret) with the binding's org (the namespace it resolves
   * in), or null: from the bindings this token serves, read again when the cached list is older than 30 s (a changed
   * reference is picked up within that).
   */
  readonly credentialRef: (channelBindingId: string, use?: CredentialUse) => Effect.Effect<BindingCredentialRef | null, CloudUnavailable>
  /**
   * Tells the cloud one binding's own credential was refused (`auth_required`) or could not be resolved (`error`),
   * with a redacted detail, or works again (`active`).
   */
  readonly reportBindingStatus: (channelBindingId: string, status: "active" | "auth_required" | "error", detail: string | null) => Effect.Effect<void, CloudUnavailable>
  /** Tells the cloud a provider's credential was refused (`auth_required`, with a redacted detail) or works again (`active`), on every binding of it this token serves. */
  readonly reportProviderStatus: (providerId: string, status: "active" | "auth_required", detail: string | null) => Effect.Effect<void, CloudUnavailable>
  readonly listDeliveries: (query: DeliveryQuery) => Effect.Effect<ReadonlyArray<DeliveryView>, CloudUnavailable>
  readonly retry: (deliveryId: string) => Effect.Effect<DeliveryView, DeliveryNotFound | DeliveryConflict | CloudUnavailable>
  readonly deadLetter: (deliveryId: string) => Effect.Effect<DeliveryView, DeliveryNotFound | DeliveryConflict | CloudUnavailable>
}>()("cowork/gateway/CloudChannels") {}
