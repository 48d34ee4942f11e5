import { Schema } from "effect"
import { CREDENTIAL_REF_PATTERN } from "./CredentialNamespace.ts"
import { makeId } from "./Ids.ts"
import { Id, isStorableText, jsonProblem, Text } from "./Input.ts"
import { MAX_CHOICE_OPTIONS, MAX_CHOICE_QUESTIONS } from "./QuestionChoices.ts"
import type { EventDraft } from "./SessionEvent.ts"

/**
 * Channels (issue 11): an org's chat / email / webhook endpoints (bindings), the external users resolved to org
 * members (identities), the session each external chat or thread talks to (routes), the outbox of session replies
 * a gateway sends (deliveries), the inbound provider events a gateway turns into prompts exactly once, and the
 * gateway's durable cursors. The routes are in ChannelsApi.ts.
 */

export const ChannelProviderKind = Schema.Literals(["telegram", "slack", "email", "webhook"])
export type ChannelProviderKind = typeof ChannelProviderKind.Type

export const ChannelBindingStatus = Schema.Literals(["active", "disabled", "auth_required", "error"])
export type ChannelBindingStatus = typeof ChannelBindingStatus.Type

/** Who may prompt through a binding: anyone in its chat (`open`), or only external users linked to a member. */
export const InboundPolicy = Schema.Literals(["open", "linked_only"])
export type InboundPolicy = typeof InboundPolicy.Type

const MAX_CHANNEL_TEXT_LENGTH = 100_000
const MAX_EXTERNAL_ID_LENGTH = 256
const MAX_PROVIDER_EVENT_ID_LENGTH = 200
const MAX_BINDINGS_PER_GATEWAY_TOKEN = 100

const ExternalId = Text(MAX_EXTERNAL_ID_LENGTH).check(Schema.isMinLength(1))
const ProviderEventId = Text(MAX_PROVIDER_EVENT_ID_LENGTH).check(Schema.isMinLength(1))

/** A gateway provider instance id (`telegram-main`): what the gateway's `/webhooks/:providerId` names. */
const ProviderId = Schema.String.annotate({ expected: "a provider id (1-64 of A-Z a-z 0-9 . _ -)" }).check(
  Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/)
)

/**
 * Where the gateway finds the channel's credential: a reference into the org's credential namespace (`env:NAME` with
 * the org's prefix, or `file:name` in the org's credentials directory; see CredentialNamespace.ts). The cloud stores
 * the reference, never the plaintext, and refuses a value that is not a reference of that syntax.
 */
const CredentialRef = Schema.String.annotate({
  expected: "a secret reference: env:NAME or file:name (never the credential itself, never a path)"
}).check(Schema.isPattern(CREDENTIAL_REF_PATTERN))

/** Keys a settings object may not carry: credentials go by reference (`credentialRef`), never in settings. */
const SECRET_SETTING_KEY = /secret|token|password|passwd|credential|api[_-]?key|private[_-]?key/i

/** Binding settings: bounded JSON, an object whose keys never look like a credential. */
const ChannelSettings = Schema.Record(Schema.String, Schema.Unknown).check(
  Schema.makeFilter<Record<string, unknown>>((settings) => {
    const problem = jsonProblem(settings)
    if (problem !== undefined) return problem
    const keys = Object.keys(settings)
    if (keys.length > 50) return "at most 50 settings"
    const secretLike = keys.find((key) => SECRET_SETTING_KEY.test(key))
    return secretLike === undefined ? true : `settings.${secretLike} looks like a credential: pass credentials as credentialRef`
  })
)

export const ChannelBinding = Schema.Struct({
  id: Schema.String,
  /** The binding's org: the namespace its `credentialRef` resolves in. */
  orgId: Schema.String,
  providerKind: ChannelProviderKind,
  providerId: Schema.String,
  displayName: Schema.String,
  status: ChannelBindingStatus,
  /** Why the status is `auth_required` / `error` (set by the gateway or an admin); redacted text. */
  statusDetail: Schema.NullOr(Schema.String),
  settings: Schema.Record(Schema.String, Schema.Unknown),
  /** The secret reference (never a secret). */
  credentialRef: Schema.NullOr(Schema.String),
  /**
   * The binding's own inbound signing secret, by reference in the org's namespace like `credentialRef`: inbound
   * requests for this binding go to the gateway's `/webhooks/:providerId/:bindingId` signed with it, and the
   * provider-wide secret no longer admits them.
   */
  inboundCredentialRef: Schema.NullOr(Schema.String),
  /** The default target: a chat / channel id, an email address, a URL. */
  externalTarget: Schema.String,
  inboundPolicy: InboundPolicy,
  createdAt: Schema.String,
  updatedAt: Schema.String
})
export type ChannelBinding = typeof ChannelBinding.Type

export const CreateChannelBindingBody = Schema.Struct({
  providerKind: ChannelProviderKind,
  providerId: ProviderId,
  displayName: Text(200).check(Schema.isMinLength(1)),
  externalTarget: Text(2_000).check(Schema.isMinLength(1)),
  status: Schema.optional(ChannelBindingStatus),
  settings: Schema.optional(ChannelSettings),
  credentialRef: Schema.optional(CredentialRef),
  inboundCredentialRef: Schema.optional(CredentialRef),
  inboundPolicy: Schema.optional(InboundPolicy)
})
export type CreateChannelBindingBody = typeof CreateChannelBindingBody.Type

export const UpdateChannelBindingBody = Schema.Struct({
  displayName: Schema.optional(Text(200).check(Schema.isMinLength(1))),
  externalTarget: Schema.optional(Text(2_000).check(Schema.isMinLength(1))),
  status: Schema.optional(ChannelBindingStatus),
  statusDetail: Schema.optional(Schema.NullOr(Text(500))),
  settings: Schema.optional(ChannelSettings),
  credentialRef: Schema.optional(Schema.NullOr(CredentialRef)),
  inboundCredentialRef: Schema.optional(Schema.NullOr(CredentialRef)),
  inboundPolicy: Schema.optional(InboundPolicy)
})
export type UpdateChannelBindingBody = typeof UpdateChannelBindingBody.Type

/** What a gateway reports about a binding it serves (provider auth failed, recovered, …). */
export const ReportChannelBindingStatusBody = Schema.Struct({
  status: Schema.Literals(["active", "auth_required", "error"]),
  detail: Schema.optional(Schema.NullOr(Text(500)))
})

// ---------------------------------------------------------------------------------------------------------------
// Routes: which session an external chat / thread talks to

export const ChannelRoute = Schema.Struct({
  id: Schema.String,
  channelBindingId: Schema.String,
  externalThreadId: Schema.String,
  sessionId: Schema.String,
  /** `first_message`: created by the first inbound message; `explicit`: bound by an admin. */
  origin: Schema.Literals(["first_message", "explicit"]),
  createdAt: Schema.String
})
export type ChannelRoute = typeof ChannelRoute.Type

export const BindSessionBody = Schema.Struct({
  externalThreadId: ExternalId,
  sessionId: Id
})

// ---------------------------------------------------------------------------------------------------------------
// Identities: an external user (provider + external id) resolved to an org member

export const ChannelIdentity = Schema.Struct({
  id: Schema.String,
  providerKind: ChannelProviderKind,
  providerId: Schema.String,
  externalUserId: Schema.String,
  /** The org member this external user acts as. */
  accountId: Schema.String,
  displayName: Schema.NullOr(Schema.String),
  createdAt: Schema.String
})
export type ChannelIdentity = typeof ChannelIdentity.Type

export const CreateChannelIdentityBody = Schema.Struct({
  providerKind: ChannelProviderKind,
  providerId: ProviderId,
  externalUserId: ExternalId,
  accountId: Id,
  displayName: Schema.optional(Text(200))
})

export const ResolveIdentityBody = Schema.Struct({
  channelBindingId: Id,
  externalUserId: ExternalId
})

/** `principal` is null for an external user linked to no member (or to one who left the org). */
export const ResolvedIdentity = Schema.Struct({
  identity: Schema.NullOr(ChannelIdentity),
  principal: Schema.NullOr(Schema.Struct({ accountId: Schema.String, role: Schema.String })),
  /** Whether this user may prompt through the binding (its `inboundPolicy`). */
  mayPrompt: Schema.Boolean
})
export type ResolvedIdentity = typeof ResolvedIdentity.Type

// ---------------------------------------------------------------------------------------------------------------
// Inbound: provider events claimed once, prompts, answers to questions / permissions

/**
 * `message` / `callback`: an inbound update, claimed while the gateway prompts (TTL), then completed; `signature`:
 * a webhook signature's digest (the replay store replicas share), claimed while its request is handled, completed
 * `accepted` once it was (every later claim: `completed`, a replay), released when it was not (a retry may claim it).
 */
export const ProviderEventKind = Schema.Literals(["message", "callback", "signature"])
export type ProviderEventKind = typeof ProviderEventKind.Type

const MIN_CLAIM_TTL_MS = 1_000
const MAX_CLAIM_TTL_MS = 600_000
export const DEFAULT_CLAIM_TTL_MS = 60_000

const ClaimTtlMs = Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: MIN_CLAIM_TTL_MS, maximum: MAX_CLAIM_TTL_MS }))

export const ClaimProviderEventBody = Schema.Struct({
  channelBindingId: Id,
  providerEventId: ProviderEventId,
  kind: Schema.optional(ProviderEventKind),
  claimTtlMs: Schema.optional(ClaimTtlMs)
})

/**
 * `claimed`: this caller holds it (process it, then complete with `claimToken`); `in_progress`: another holder's
 * claim is live (do nothing now; it is retried if that holder dies); `completed`: already processed (a duplicate);
 * `released`: the answer to a `released` completion (nobody holds it; the next claim gets it).
 */
const ProviderEventClaimStatus = Schema.Literals(["claimed", "in_progress", "completed", "released"])
type ProviderEventClaimStatus = typeof ProviderEventClaimStatus.Type

export const ProviderEventClaim = Schema.Struct({
  channelBindingId: Schema.String,
  providerEventId: Schema.String,
  kind: ProviderEventKind,
  status: ProviderEventClaimStatus,
  /** Only when `status` is `claimed`. */
  claimToken: Schema.NullOr(Schema.String),
  /** For `completed`: how it ended (`prompted`, `ignored`, `accepted` for a signature). */
  outcome: Schema.NullOr(Schema.String),
  claimExpiresAt: Schema.NullOr(Schema.String)
})
export type ProviderEventClaim = typeof ProviderEventClaim.Type

/**
 * `released`: processing failed; the claim is dropped so a provider retry can claim it again. `accepted`: a
 * signature's request was handled.
 */
export const ProviderEventOutcome = Schema.Literals(["prompted", "ignored", "accepted", "released"])
export type ProviderEventOutcome = typeof ProviderEventOutcome.Type

export const CompleteProviderEventBody = Schema.Struct({
  channelBindingId: Id,
  providerEventId: ProviderEventId,
  claimToken: Text(100).check(Schema.isMinLength(1)),
  outcome: ProviderEventOutcome
})

/** Where an inbound message (a prompt or an answer) came from: the provider's update, its chat / thread and its user. */
const inboundFields = {
  /** The provider's id of the inbound update; the idempotency key of what it queues (a retry queues once). */
  providerEventId: ProviderEventId,
  externalThreadId: ExternalId,
  externalUserId: ExternalId
}

export const ChannelPromptBody = Schema.Struct({
  ...inboundFields,
  text: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(MAX_CHANNEL_TEXT_LENGTH), isStorableText),
  /** The title of a session created for a new thread. */
  threadTitle: Schema.optional(Text(200))
})

/**
 * An inbound message handled in one request (`POST /api/channels/bindings/:id/inbound`): the signed request's replay
 * key (`signatureKey`, claimed as a `signature` provider event while it is handled), the provider event's claim, the
 * prompt as `prompt` makes it, and both claims completed — or released when the prompt could not be queued.
 */
export const ChannelInboundBody = Schema.Struct({
  ...ChannelPromptBody.fields,
  signatureKey: Schema.optional(ProviderEventId)
})

/**
 * `prompted` / `duplicate` (this provider event was handled before) / `refused` (the binding's policy or state, or an
 * unusable text: done for good) / `in_progress` (another holder has the signature or the event right now: the provider
 * should retry) / `replayed` (this signature was accepted before).
 */
export const ChannelInboundResult = Schema.Struct({
  status: Schema.Literals(["prompted", "duplicate", "refused", "in_progress", "replayed"]),
  sessionId: Schema.NullOr(Schema.String)
})
export type ChannelInboundResult = typeof ChannelInboundResult.Type

export const ChannelAnswerAccepted = Schema.Struct({ sessionId: Schema.String, commandId: Schema.String })

/** The ask a chat answer names still takes an answer from its user, on this session (`checkAnswer`). */
export const ChannelAnswerOpen = Schema.Struct({ sessionId: Schema.String })

export const ChannelPromptAccepted = Schema.Struct({
  ...ChannelAnswerAccepted.fields,
  /** The route (and its session) was created by this message. */
  sessionCreated: Schema.Boolean,
  /** An earlier prompt with this provider event id was returned (nothing new queued). */
  duplicate: Schema.Boolean,
  /**
   * The text answered the ask the session waits on instead of prompting (a reply to a pending question, or
   * once/always/reject to a pending permission): `commandId` is the answer's command.
   */
  answered: Schema.optional(Schema.Boolean)
})
export type ChannelPromptAccepted = typeof ChannelPromptAccepted.Type

/**
 * A chat answer to a session's question or permission request: `permission-respond` `{permissionId, response}`,
 * `question-reply` `{requestId, answers}` (or `{requestId, choices}`: one option index per question, resolved to its
 * label by the cloud against the pending question, as answer buttons send it), `question-reject` `{requestId}` — the
 * same commands as `POST /api/sessions/:id/{permission-respond,question-reply,question-reject}`.
 */
export const ChannelAnswerBody = Schema.Struct({
  ...inboundFields,
  action: Schema.Literals(["permission-respond", "question-reply", "question-reject"]),
  /** Who answered as the chat shows them (Telegram `@username` or first name), for a later presser's note. */
  externalUserName: Schema.optional(Text(200)),
  permissionId: Schema.optional(Text(200).check(Schema.isMinLength(1))),
  response: Schema.optional(Schema.Literals(["once", "always", "reject"])),
  requestId: Schema.optional(Text(200).check(Schema.isMinLength(1))),
  answers: Schema.optional(Schema.Array(Schema.Array(Text(10_000))).check(Schema.isMaxLength(50))),
  choices: Schema.optional(
    Schema.Array(Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: MAX_CHOICE_OPTIONS - 1 }))).check(
      Schema.isMinLength(1),
      Schema.isMaxLength(MAX_CHOICE_QUESTIONS)
    )
  )
})
export type ChannelAnswerBody = typeof ChannelAnswerBody.Type

// ---------------------------------------------------------------------------------------------------------------
// Deliveries: the outbox a gateway drains

export const DeliveryStatus = Schema.Literals(["pending", "claimed", "sent", "failed", "dead"])
export type DeliveryStatus = typeof DeliveryStatus.Type

/** The events a bound session's reply is delivered for. */
export const DeliveryEventType = Schema.Literals(["assistant.message", "question.asked", "permission.requested"])
export type DeliveryEventType = typeof DeliveryEventType.Type

export const DeliveryKind = Schema.Literals(["message", "question", "permission"])
export type DeliveryKind = typeof DeliveryKind.Type

export const ChannelDelivery = Schema.Struct({
  id: Schema.String,
  channelBindingId: Schema.String,
  providerKind: ChannelProviderKind,
  providerId: Schema.String,
  /** The binding's target (chat / channel / address / URL). */
  externalTarget: Schema.String,
  /** The chat / thread of the session's route (`null` when the session is bound to the binding's target). */
  externalThreadId: Schema.NullOr(Schema.String),
  sessionId: Schema.String,
  eventId: Schema.String,
  eventSequence: Schema.Number,
  eventType: DeliveryEventType,
  kind: DeliveryKind,
  /** The event's payload (`text` for a message; `questions` / `permission` for the others). */
  payload: Schema.Unknown,
  status: DeliveryStatus,
  /** Claims so far (each claim is one send attempt). */
  attempts: Schema.Number,
  /** The server's cap: the failed ack or expired claim that reaches it makes the delivery `dead`. */
  maxAttempts: Schema.Number,
  /** When a `pending` / `failed` delivery may be claimed next. */
  nextAttemptAt: Schema.NullOr(Schema.String),
  claimExpiresAt: Schema.NullOr(Schema.String),
  /** The gateway token that claimed it last. */
  lastClaimedBy: Schema.NullOr(Schema.String),
  /** The gateway replica (`gatewayId` at claim) that claimed it last. */
  lastClaimedReplica: Schema.NullOr(Schema.String),
  /** Redacted. */
  lastError: Schema.NullOr(Schema.String),
  /** Stable across attempts: providers and receivers deduplicate on it. */
  idempotencyKey: Schema.String,
  providerMessageId: Schema.NullOr(Schema.String),
  createdAt: Schema.String,
  updatedAt: Schema.String,
  sentAt: Schema.NullOr(Schema.String)
})
export type ChannelDelivery = typeof ChannelDelivery.Type

/** A delivery this caller now holds: ack or renew it with `claimToken` before `claimExpiresAt`. */
export const ClaimedDelivery = Schema.Struct({ ...ChannelDelivery.fields, claimToken: Schema.String })
export type ClaimedDelivery = typeof ClaimedDelivery.Type

const MAX_DELIVERY_CLAIM_BATCH = 100
/** A new delivery's attempt cap (the feed's configured cap replaces it at each claim). */
export const DEFAULT_DELIVERY_MAX_ATTEMPTS = 8

export const ClaimDeliveriesBody = Schema.Struct({
  limit: Schema.optional(Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: MAX_DELIVERY_CLAIM_BATCH }))),
  claimTtlMs: Schema.optional(ClaimTtlMs),
  /** Claim only for these of the caller's bindings. */
  channelBindingIds: Schema.optional(Schema.Array(Id).check(Schema.isMinLength(1), Schema.isMaxLength(MAX_BINDINGS_PER_GATEWAY_TOKEN))),
  /** The replica's name, recorded as `lastClaimedReplica`. */
  gatewayId: Schema.optional(Text(100).check(Schema.isMinLength(1)))
})

export const DeliveryAckOutcome = Schema.Literals(["sent", "failed", "dead"])
export type DeliveryAckOutcome = typeof DeliveryAckOutcome.Type

export const AckDeliveryBody = Schema.Struct({
  claimToken: Text(100).check(Schema.isMinLength(1)),
  outcome: DeliveryAckOutcome,
  /** Why it failed; stored redacted. */
  error: Schema.optional(Text(2_000)),
  /** A provider's `Retry-After` (429): the next attempt is no sooner than this (capped by the server). */
  retryAfterMs: Schema.optional(Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 86_400_000 }))),
  providerMessageId: Schema.optional(Text(200))
})

/** Acks a gateway sends in one batch at most (`POST /api/channels/deliveries/ack`). */
export const MAX_ACKS_PER_BATCH = 100

/** One ack of a batch: the delivery's id and what `AckDeliveryBody` says. */
export const DeliveryAck = Schema.Struct({ id: Id, ...AckDeliveryBody.fields })
export type DeliveryAck = typeof DeliveryAck.Type

export const AckDeliveriesBody = Schema.Struct({
  acks: Schema.Array(DeliveryAck).check(Schema.isMinLength(1), Schema.isMaxLength(MAX_ACKS_PER_BATCH))
})

/**
 * What came of one ack of a batch, in the batch's order: `delivery` as the single ack answers it, or `refused` —
 * `claim_lost` (the claim expired or was taken over: the single ack's 409) or `not_found` (not a delivery this token
 * may ack: the single ack's 404).
 */
export const DeliveryAckResult = Schema.Struct({
  id: Schema.String,
  delivery: Schema.NullOr(ChannelDelivery),
  refused: Schema.NullOr(Schema.Literals(["claim_lost", "not_found"]))
})
export type DeliveryAckResult = typeof DeliveryAckResult.Type

export const RenewDeliveryBody = Schema.Struct({
  claimToken: Text(100).check(Schema.isMinLength(1)),
  claimTtlMs: Schema.optional(ClaimTtlMs)
})

export const DeadLetterBody = Schema.Struct({ reason: Schema.optional(Text(500)) })

/** `event: delivery.available` on the delivery stream: claim now (a poll backstop covers lost notifications). */
export const DeliveryAvailable = Schema.Struct({ channelBindingId: Schema.String })
export type DeliveryAvailable = typeof DeliveryAvailable.Type

/** Why a fenced delivery / provider-event write was refused: the caller no longer holds the claim. */
export class ClaimLost extends Schema.TaggedError<ClaimLost>()("ClaimLost", {
  kind: Schema.Literals(["delivery", "provider_event"]),
  id: Schema.String,
  reason: Schema.Literals(["expired", "reclaimed", "not_claimed"])
}, { httpApiStatus: 409 }) {}

// ---------------------------------------------------------------------------------------------------------------
// Cursors: a gateway's durable positions (a provider's update offset, a rendered sequence)

export const ChannelCursor = Schema.Struct({
  channelBindingId: Schema.String,
  name: Schema.String,
  value: Schema.String,
  updatedAt: Schema.String,
  updatedBy: Schema.NullOr(Schema.String)
})
export type ChannelCursor = typeof ChannelCursor.Type

const CursorName = Schema.String.annotate({ expected: "a cursor name (1-100 of A-Z a-z 0-9 . _ : -)" }).check(
  Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/)
)

/** With `expectedValue` (null: the cursor must not exist yet), a compare-and-set: a mismatch is 409. */
export const PutCursorBody = Schema.Struct({
  channelBindingId: Id,
  name: CursorName,
  value: Text(1_000),
  expectedValue: Schema.optional(Schema.NullOr(Text(1_000)))
})

// ---------------------------------------------------------------------------------------------------------------
// Gateway service tokens: scope `gateway`, bound to channel bindings

export const CreateGatewayTokenBody = Schema.Struct({
  name: Text(100).check(Schema.isMinLength(1)),
  channelBindingIds: Schema.Array(Id).check(Schema.isMinLength(1), Schema.isMaxLength(MAX_BINDINGS_PER_GATEWAY_TOKEN)),
  expiresInSeconds: Schema.optional(
    Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: 365 * 24 * 3600 }))
  )
})

/** What the calling token may do here (`GET /api/channels/gateway`): the gateway's `deliveryOperator` comes from it. */
export const GatewayGrant = Schema.Struct({
  tokenId: Schema.String,
  scope: Schema.Literals(["gateway", "admin"]),
  /** The bindings a gateway token serves; for an admin, every binding of the org. */
  channelBindingIds: Schema.Array(Schema.String),
  listAllowed: Schema.Boolean,
  retryAllowed: Schema.Boolean,
  deadLetterAllowed: Schema.Boolean
})
export type GatewayGrant = typeof GatewayGrant.Type

// ---------------------------------------------------------------------------------------------------------------
// The outbox rule: which appended events become deliveries

export interface DeliveryDraft {
  /** Index of the event in its batch. */
  readonly draftIndex: number
  readonly eventType: DeliveryEventType
  readonly kind: DeliveryKind
}

const deliveryKindOf = (draft: EventDraft): DeliveryKind | undefined => {
  switch (draft.type) {
    case "assistant.message":
      return draft.payload.final === true ? "message" : undefined
    case "question.asked":
      return "question"
    case "permission.requested":
      return "permission"
    default:
      return undefined
  }
}

/**
 * The events of a batch a bound session delivers to its channel: final assistant messages (never deltas),
 * questions and permission requests. Every store inserts one delivery per draft and route in the transaction that
 * appends the batch.
 */
export const deliveryDrafts = (drafts: ReadonlyArray<EventDraft>): ReadonlyArray<DeliveryDraft> =>
  drafts.flatMap((draft, draftIndex) => {
    const kind = deliveryKindOf(draft)
    return kind === undefined ? [] : [{ draftIndex, eventType: draft.type as DeliveryEventType, kind }]
  })

/** The delivery of event `eventId` to route `routeId`: the same key on every attempt, for receivers to deduplicate. */
export const deliveryIdempotencyKey = (eventId: string, routeId: string): string => `ocd_${eventId}_${routeId}`

export const newChannelBindingId = (): string => makeId("chb")
export const newChannelRouteId = (): string => makeId("chr")
export const newChannelIdentityId = (): string => makeId("chi")
export const newDeliveryId = (): string => makeId("dlv")
