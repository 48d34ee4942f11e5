import type { AnswerRefusal, InboundMessage } from "@cowork/channels"
import { type Client, deliveryWakeups, make as makeClient } from "@cowork/client"
import type { ChannelAnswerBody, ChannelBinding, ChannelDelivery, ClaimedDelivery as WireDelivery } from "@cowork/domain"
import { Clock, Effect, Layer, Ref, Stream } from "effect"
import { FetchHttpClient, HttpClient } from "effect/http"
import {
  type AckResult,
  type AnswerAdmission,
  type BindingCredentialRef,
  ClaimLost,
  type ClaimedDelivery,
  CloudChannels,
  CloudUnavailable,
  DeliveryConflict,
  DeliveryNotFound,
  type DeliveryView,
  type InboundResult,
  type SignatureClaim
} from "./CloudChannels.ts"
import { GatewayConfig } from "./GatewayConfig.ts"
import { admittedBinding, inboundCandidate } from "./InboundBinding.ts"
import { renderButtons, renderText } from "./Render.ts"

/** Bindings are re-read at most this often when an inbound message names a target the cache does not know. */
const BINDINGS_REFRESH_MS = 5_000
const EVENT_CLAIM_TTL_MS = 60_000
/** A binding's credentialRef is read again from the cloud when the cached bindings are older than this. */
const CREDENTIAL_REFRESH_MS = 30_000
/** How long a signed request's replay key stays claimed when the replica handling it dies before settling it. */
const SIGNATURE_CLAIM_TTL_MS = 60_000

const describe = (error: unknown): string => {
  const tagged = error as { _tag?: unknown; message?: unknown; reason?: unknown; response?: { status?: unknown } }
  const status = typeof tagged.response?.status === "number" ? ` ${tagged.response.status}` : ""
  const tag = typeof tagged._tag === "string" ? tagged._tag : "error"
  return `${tag}${status}${typeof tagged.message === "string" ? `: ${tagged.message.slice(0, 300)}` : ""}`
}

const unavailable = (error: unknown) => {
  const status = (error as { response?: { status?: unknown } }).response?.status
  return new CloudUnavailable({ message: describe(error), status: typeof status === "number" ? status : undefined })
}

const tagOf = (error: unknown): string | undefined => (error as { _tag?: unknown })?._tag as string | undefined

const REFUSALS: ReadonlySet<string> = new Set(["answered", "session_aborted", "not_pending"])
const text = (value: unknown, max = 320): string | undefined => (typeof value === "string" && value.length > 0 ? value.slice(0, max) : undefined)

/**
 * Why the cloud refused an answer, from its error: a 409's `details.reason` (with who / where / when for `answered`),
 * a 409 naming the binding's `status` (not active), a 403 (the binding's policy does not admit the user).
 */
const refusalOf = (tag: string, error: unknown): AnswerRefusal | undefined => {
  if (tag === "Forbidden") return { reason: "not_admitted" }
  if (tag !== "Conflict") return undefined
  const details = (error as { details?: Record<string, unknown> }).details ?? {}
  if (typeof details.reason === "string" && REFUSALS.has(details.reason)) {
    return {
      reason: details.reason as AnswerRefusal["reason"],
      answeredBy: text(details.answeredBy),
      answeredByName: text(details.answeredByName, 200),
      answeredVia: text(details.answeredVia, 40),
      answeredAt: text(details.answeredAt, 40)
    }
  }
  return typeof details.status === "string" ? { reason: "binding_inactive" } : undefined
}

const view = (d: ChannelDelivery): DeliveryView => ({
  id: d.id,
  channelBindingId: d.channelBindingId,
  status: d.status,
  attempts: d.attempts,
  nextAttemptAt: d.nextAttemptAt,
  lastClaimedBy: d.lastClaimedBy,
  lastError: d.lastError,
  idempotencyKey: d.idempotencyKey,
  createdAt: d.createdAt
})

const toClaimed = (d: WireDelivery): ClaimedDelivery => ({
  id: d.id,
  channelBindingId: d.channelBindingId,
  providerId: d.providerId,
  providerKind: d.providerKind,
  target: d.externalTarget,
  // A route on the binding's own target (a chat without topics) has no thread to answer in.
  threadId: d.externalThreadId === null || d.externalThreadId === d.externalTarget ? undefined : d.externalThreadId,
  eventType: d.eventType,
  text: renderText(d),
  buttons: renderButtons(d),
  payload: {
    deliveryId: d.id,
    idempotencyKey: d.idempotencyKey,
    sessionId: d.sessionId,
    eventId: d.eventId,
    eventType: d.eventType,
    kind: d.kind,
    externalThreadId: d.externalThreadId,
    text: renderText(d),
    payload: d.payload
  },
  idempotencyKey: d.idempotencyKey,
  attempt: d.attempts,
  claimToken: d.claimToken,
  committedAt: d.createdAt
})

/** A chat answer as the cloud's human-in-the-loop command: a permission's once/always/reject, or a question's reply. */
const answerBody = (message: InboundMessage): ChannelAnswerBody => {
  const answer = message.answer!
  const { requestId } = answer
  const by = message.pressedMessage?.by
  const common = {
    providerEventId: message.providerEventId,
    externalThreadId: message.externalThreadId ?? message.externalTarget,
    externalUserId: message.externalUserId,
    ...(by === undefined || by === "" ? {} : { externalUserName: by.slice(0, 200) })
  }
  // A completed pick: the cloud resolves each question's option index to its label.
  if ("choices" in answer) return { ...common, action: "question-reply", requestId, choices: answer.choices.map((choice) => choice ?? 0) }
  const { value } = answer
  if (requestId.startsWith("per") && (value === "once" || value === "always" || value === "reject")) {
    return { ...common, action: "permission-respond", permissionId: requestId, response: value }
  }
  if (value === "reject") return { ...common, action: "question-reject", requestId }
  return { ...common, action: "question-reply", requestId, answers: [[value]] }
}

/** `CloudChannels` over the typed client of the web role's API, with the gateway's service token. */
const make = Effect.gen(function*() {
  const config = yield* GatewayConfig
  const http = yield* HttpClient.HttpClient
  const options = { baseUrl: config.cloudUrl, token: config.token }
  const client: Client = yield* makeClient(options)
  const channels = client.channels
  const bindings = yield* Ref.make<{ readonly at: number; readonly list: ReadonlyArray<ChannelBinding> }>({ at: 0, list: [] })

  const loadBindings = Effect.gen(function*() {
    const list = (yield* channels.listBindings().pipe(Effect.mapError(unavailable))).bindings
    yield* Ref.set(bindings, { at: yield* Clock.currentTimeMillis, list })
    return list
  })

  /** The first cached binding that matches, or (when none does and the cache is older than the refresh interval) the first fresh one. */
  const findBinding = (match: (binding: ChannelBinding) => boolean) =>
    Effect.gen(function*() {
      const cached = yield* Ref.get(bindings)
      const hit = cached.list.find(match)
      if (hit !== undefined) return hit
      if ((yield* Clock.currentTimeMillis) - cached.at < BINDINGS_REFRESH_MS) return undefined
      return (yield* loadBindings).find(match)
    })

  /** A binding of this provider by id. */
  const bindingById = (providerId: string, channelBindingId: string) =>
    findBinding((b) => b.id === channelBindingId && b.providerId === providerId)

  /** The binding an inbound message reaches (`InboundBinding`: a binding's own secret reaches that binding only). */
  const inboundBinding = (providerId: string, message: InboundMessage, viaBinding: string | undefined) =>
    Effect.map(
      findBinding(inboundCandidate(providerId, message.externalTarget, viaBinding)),
      (found) => admittedBinding(found, message.externalTarget, viaBinding)
    )

  const firstBindingOf = (providerId: string) =>
    Effect.gen(function*() {
      const pick = (list: ReadonlyArray<ChannelBinding>) => [...list].filter((b) => b.providerId === providerId).sort((a, b) => a.id.localeCompare(b.id))[0]
      return pick((yield* Ref.get(bindings)).list) ?? pick(yield* loadBindings)
    })

  const fenced = <A>(deliveryId: string, effect: Effect.Effect<A, unknown>) =>
    effect.pipe(Effect.mapError((error) => {
      const tag = tagOf(error)
      return tag === "ClaimLost" || tag === "NotFound" ? new ClaimLost({ deliveryId }) : unavailable(error)
    }))

  const control = (deliveryId: string, effect: Effect.Effect<{ readonly delivery: ChannelDelivery }, unknown>) =>
    effect.pipe(
      Effect.map((answer) => view(answer.delivery)),
      Effect.mapError((error) => {
        const tag = tagOf(error)
        if (tag === "NotFound" || tag === "Forbidden") return new DeliveryNotFound({ deliveryId })
        if (tag === "Conflict") return new DeliveryConflict({ deliveryId, message: describe(error) })
        return unavailable(error)
      })
    )

  return CloudChannels.of({
    whoami: channels.gatewayGrant().pipe(
      Effect.map((grant) => ({
        scope: grant.scope,
        tokenId: grant.tokenId,
        channelBindingIds: grant.channelBindingIds,
        listAllowed: grant.listAllowed,
        retryAllowed: grant.retryAllowed,
        deadLetterAllowed: grant.deadLetterAllowed
      })),
      Effect.mapError(unavailable)
    ),
    claim: (limit, ttlMs) =>
      channels.claimDeliveries({ payload: { limit, claimTtlMs: ttlMs, gatewayId: config.gatewayId } }).pipe(
        Effect.map((answer) => answer.deliveries.map(toClaimed)),
        Effect.mapError(unavailable)
      ),
    renew: (delivery, ttlMs) =>
      fenced(delivery.id, channels.renewDelivery({ params: { id: delivery.id }, payload: { claimToken: delivery.claimToken, claimTtlMs: ttlMs } })).pipe(Effect.asVoid),
    ack: (acks) =>
      channels.ackDeliveries({
        payload: {
          acks: acks.map(({ delivery, outcome }) => ({
            id: delivery.id,
            claimToken: delivery.claimToken,
            outcome: outcome.status,
            ...(outcome.status === "sent" ? {} : { error: outcome.error.slice(0, 2_000) }),
            ...(outcome.status === "failed" && outcome.retryAfterMs !== undefined
              ? { retryAfterMs: Math.min(86_400_000, Math.max(0, Math.round(outcome.retryAfterMs))) }
              : {})
          }))
        }
      }).pipe(
        Effect.map(({ results }) =>
          results.map(({ id, delivery: d }): AckResult | ClaimLost =>
            // Refused (`claim_lost`, or `not_found`: no longer this token's to ack): the claim is not held any more.
            d === null
              ? new ClaimLost({ deliveryId: id })
              : { status: d.status === "sent" ? "sent" : d.status === "dead" ? "dead" : "pending", nextAttemptAt: d.nextAttemptAt ?? undefined })
        ),
        Effect.mapError(unavailable)
      ),
    wakeups: deliveryWakeups(options).pipe(
      Stream.provideService(HttpClient.HttpClient, http),
      Stream.map(() => undefined),
      Stream.mapError(unavailable)
    ),
    claimSignature: (providerId, key, channelBindingId) =>
      Effect.gen(function*() {
        const binding = channelBindingId === undefined ? yield* firstBindingOf(providerId) : yield* bindingById(providerId, channelBindingId)
        // No binding of this provider: nothing to record it under, and the message is answered as unbound.
        if (binding === undefined) return { status: "claimed", settle: () => Effect.void } satisfies SignatureClaim as SignatureClaim
        const claim = yield* channels.claimProviderEvent({
          payload: { channelBindingId: binding.id, providerEventId: key, kind: "signature", claimTtlMs: SIGNATURE_CLAIM_TTL_MS }
        }).pipe(Effect.mapError(unavailable))
        if (claim.status === "completed") return { status: "replayed" } satisfies SignatureClaim as SignatureClaim
        if (claim.status !== "claimed" || claim.claimToken === null) return { status: "in_progress" } satisfies SignatureClaim as SignatureClaim
        const claimToken = claim.claimToken
        return {
          status: "claimed",
          // A settle the cloud does not take leaves the claim to expire: a retry is then accepted (and the
          // provider-event claim still prompts once).
          settle: (handled) =>
            channels.completeProviderEvent({
              payload: { channelBindingId: binding.id, providerEventId: key, claimToken, outcome: handled ? "accepted" : "released" }
            }).pipe(Effect.ignore)
        } satisfies SignatureClaim as SignatureClaim
      }),
    message: (providerId, message, replayKey, viaBinding) =>
      Effect.gen(function*() {
        const binding = yield* inboundBinding(providerId, message, viaBinding)
        if (binding === undefined) return { status: "unbound" } satisfies InboundResult
        const answer = yield* channels.inbound({
          params: { id: binding.id },
          payload: {
            providerEventId: message.providerEventId,
            externalThreadId: message.externalThreadId ?? message.externalTarget,
            externalUserId: message.externalUserId,
            text: message.text.slice(0, 100_000),
            ...(replayKey === undefined ? {} : { signatureKey: replayKey })
          }
        }).pipe(
          // A text the cloud cannot take (400 / 413 before anything was claimed): refused for good, as `inbound` does.
          Effect.catch((error) => tagOf(error) === "BadRequest" || tagOf(error) === "PayloadTooLarge"
            ? Effect.succeed({ status: "refused" as const, sessionId: null })
            : Effect.fail(unavailable(error)))
        )
        return answer.sessionId === null ? { status: answer.status } : { status: answer.status, sessionId: answer.sessionId }
      }),
    mayAnswer: (providerId, message, viaBinding) =>
      Effect.gen(function*() {
        const binding = yield* inboundBinding(providerId, message, viaBinding)
        if (binding === undefined || message.answer === undefined) return { status: "unbound" } satisfies AnswerAdmission as AnswerAdmission
        return yield* channels.checkAnswer({ params: { id: binding.id }, payload: answerBody(message) }).pipe(
          Effect.as<AnswerAdmission>({ status: "admitted" }),
          Effect.catch((error): Effect.Effect<AnswerAdmission, CloudUnavailable> => {
            const tag = tagOf(error)
            if (tag === "Forbidden" || tag === "Conflict" || tag === "BadRequest" || tag === "NotFound") {
              const refusal = refusalOf(tag, error)
              return Effect.succeed({ status: "refused", ...(refusal === undefined ? {} : { refusal }) })
            }
            return Effect.fail(unavailable(error))
          })
        )
      }),
    inbound: (providerId, _kind, message, viaBinding) =>
      Effect.gen(function*() {
        const binding = yield* inboundBinding(providerId, message, viaBinding)
        if (binding === undefined) return { status: "unbound" } satisfies InboundResult
        const claim = yield* channels.claimProviderEvent({
          payload: {
            channelBindingId: binding.id,
            providerEventId: message.providerEventId,
            kind: message.answer === undefined ? "message" : "callback",
            claimTtlMs: EVENT_CLAIM_TTL_MS
          }
        }).pipe(Effect.mapError(unavailable))
        if (claim.status === "completed") return { status: "duplicate" } satisfies InboundResult
        if (claim.status === "in_progress" || claim.claimToken === null) return { status: "in_progress" } satisfies InboundResult
        const claimToken = claim.claimToken
        const complete = (outcome: "prompted" | "ignored" | "released") =>
          channels.completeProviderEvent({
            payload: { channelBindingId: binding.id, providerEventId: message.providerEventId, claimToken, outcome }
          }).pipe(Effect.ignore)
        const threadId = message.externalThreadId ?? message.externalTarget
        const handed: Effect.Effect<{ readonly sessionId: string; readonly duplicate: boolean }, unknown> = message.answer === undefined
          ? channels.prompt({
            params: { id: binding.id },
            payload: {
              providerEventId: message.providerEventId,
              externalThreadId: threadId,
              externalUserId: message.externalUserId,
              text: message.text.slice(0, 100_000)
            }
          }).pipe(Effect.map((accepted) => ({ sessionId: accepted.sessionId, duplicate: accepted.duplicate })))
          : channels.answer({ params: { id: binding.id }, payload: answerBody(message) }).pipe(
            Effect.map((accepted) => ({ sessionId: accepted.sessionId, duplicate: false }))
          )
        return yield* handed.pipe(
          Effect.flatMap((accepted) =>
            Effect.as(complete("prompted"), {
              status: accepted.duplicate ? "duplicate" : "prompted",
              sessionId: accepted.sessionId
            } satisfies InboundResult)
          ),
          Effect.catch((error): Effect.Effect<InboundResult, CloudUnavailable> => {
            const tag = tagOf(error)
            // The binding's policy refused this user, the binding is not active, or the text is unusable: done for good.
            if (tag === "Forbidden" || tag === "Conflict" || tag === "BadRequest" || tag === "NotFound" || tag === "PayloadTooLarge") {
              const refusal = refusalOf(tag, error)
              return Effect.as(complete("ignored"), { status: "refused", ...(refusal === undefined ? {} : { refusal }) } satisfies InboundResult)
            }
            return Effect.andThen(complete("released"), Effect.fail(unavailable(error)))
          })
        )
      }),
    credentialRef: (channelBindingId, use = "outbound") =>
      Effect.gen(function*() {
        const cached = yield* Ref.get(bindings)
        const known = cached.list.find((b) => b.id === channelBindingId)
        const refOf = (binding: ChannelBinding | undefined): BindingCredentialRef | null => {
          const credentialRef = use === "outbound" ? binding?.credentialRef : binding?.inboundCredentialRef
          return binding === undefined || credentialRef === null || credentialRef === undefined
            ? null
            : { orgId: binding.orgId, credentialRef, providerId: binding.providerId }
        }
        if (known !== undefined && (yield* Clock.currentTimeMillis) - cached.at < CREDENTIAL_REFRESH_MS) return refOf(known)
        const fresh = yield* loadBindings.pipe(
          // The cloud did not answer: the reference known last still names the credential.
          Effect.catchTag("CloudUnavailable", (error) => known === undefined ? Effect.fail(error) : Effect.succeed(cached.list))
        )
        return refOf(fresh.find((b) => b.id === channelBindingId))
      }),
    reportBindingStatus: (channelBindingId, status, detail) =>
      channels.reportBindingStatus({ params: { id: channelBindingId }, payload: { status, detail: detail?.slice(0, 500) ?? null } }).pipe(
        Effect.asVoid,
        Effect.catchTag("Conflict", () => Effect.void),
        Effect.mapError(unavailable)
      ),
    reportProviderStatus: (providerId, status, detail) =>
      Effect.gen(function*() {
        // A binding with its own credential (credentialRef) does not share the provider's: its status is its own.
        const served = (yield* loadBindings).filter((b) =>
          b.providerId === providerId && b.credentialRef === null && b.status !== "disabled" && b.status !== status
        )
        yield* Effect.forEach(served, (binding) =>
          channels.reportBindingStatus({ params: { id: binding.id }, payload: { status, detail: detail?.slice(0, 500) ?? null } }).pipe(
            // A binding an admin disabled meanwhile stays disabled (409): nothing to report.
            Effect.catchTag("Conflict", () => Effect.void),
            Effect.mapError(unavailable)
          ), { discard: true })
      }),
    listDeliveries: (query) =>
      channels.listDeliveries({
        query: {
          ...(query.status === undefined ? {} : { status: query.status as ChannelDelivery["status"] }),
          ...(query.channelBindingId === undefined ? {} : { channelBindingId: query.channelBindingId }),
          ...(query.limit === undefined ? {} : { limit: query.limit })
        }
      }).pipe(
        Effect.map((page) => page.deliveries.map(view)),
        Effect.mapError(unavailable)
      ),
    retry: (deliveryId) => control(deliveryId, channels.retryDelivery({ params: { id: deliveryId } })),
    deadLetter: (deliveryId) =>
      control(deliveryId, channels.deadLetterDelivery({ params: { id: deliveryId }, payload: { reason: "dead-lettered by a gateway operator" } }))
  })
})

/** The cloud over `fetch`, from GatewayConfig (OPEN_COWORK_GATEWAY_CLOUD_URL, OPEN_COWORK_GATEWAY_TOKEN). */
export const layer = Layer.effect(CloudChannels, make).pipe(Layer.provide(FetchHttpClient.layer))
