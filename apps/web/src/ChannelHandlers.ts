import {
  Api,
  type AskAnswer,
  BadRequest,
  type ChannelAnswerBody,
  type ChannelPromptBody,
  ClaimLost,
  type ChannelBinding,
  chatTextAnswer,
  choiceAnswer,
  Conflict,
  CurrentPrincipal,
  DEFAULT_CLAIM_TTL_MS,
  DEFAULT_PAGE_SIZE,
  type DeliveryAck,
  Forbidden,
  NotFound,
  orgCredentialRef,
  type OrgPrincipal,
  type ResolvedIdentity,
  Unavailable
} from "@cowork/domain"
import { Metrics, redact } from "@cowork/observability"
import {
  askNotPending,
  ChannelStore,
  DeliveryFeed,
  type DeliveryScope,
  Identity,
  ProviderAddress,
  refusalForChat,
  SessionStore,
  Tokens
} from "@cowork/services"
import { Clock, Effect, Redacted } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { actorOf, recordAudit } from "./AuditHandlers.ts"
import { deliveryStreamResponse } from "./ChannelDeliveryStream.ts"
import { QuotaPolicy } from "./QuotaPolicy.ts"
import { askNamedBy, closedAskRefusal } from "./ClosedAsk.ts"
import { checkQuestionReply } from "./QuestionReplyCheck.ts"
import { WebLifecycle } from "./WebLifecycle.ts"

/**
 * What a caller reaches on `/api/channels/...`: an org admin every binding of the org; a gateway token (scope
 * `gateway` without `admin`) only the bindings it was issued for — any other binding, and anything under it, is a
 * 404 exactly like another org's.
 */
interface ChannelAccess {
  readonly principal: OrgPrincipal
  /** A gateway token (not an admin). */
  readonly gateway: boolean
  readonly scope: DeliveryScope
}

const bindingNotFound = () => new NotFound({ message: "channel binding not found" })

/**
 * A binding's `credentialRef` (or `inboundCredentialRef`) outside the org's credential namespace (another org's
 * variable, the gateway's own, a path) is refused at once (400 naming the field, with the org's prefix; never
 * echoing the reference). The gateway checks it again before resolving, and that check is the authoritative one.
 */
const checkCredentialRef = (ref: string | null | undefined, orgId: string, field: "credentialRef" | "inboundCredentialRef" = "credentialRef") => {
  if (ref === undefined || ref === null) return Effect.void
  const checked = orgCredentialRef(ref, orgId)
  return checked._tag === "Refused"
    ? Effect.fail(new BadRequest({ message: `${field} refused: ${checked.reason}`, field }))
    : Effect.void
}

/**
 * A webhook binding's URL whose host is a literal non-public address (or `localhost`) is refused at once (400 naming
 * `externalTarget`), unless listed in OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS. A host name is not resolved here (no
 * DNS at store time): the gateway checks every target when it connects, and that check is the authoritative one.
 */
const checkWebhookTarget = (target: string, allowedHosts: ReadonlySet<string>) => {
  let host: string
  try {
    host = new URL(target).hostname
  } catch {
    return Effect.void
  }
  const refused = ProviderAddress.literalRefusal(host, allowedHosts, ProviderAddress.WEBHOOK_ALLOWED_HOSTS_VARIABLE)
  return refused === undefined
    ? Effect.void
    : Effect.fail(new BadRequest({ message: `externalTarget refused: ${refused.message}`, field: "externalTarget" }))
}

/** How long `inbound` holds a signature's / provider event's claim if this process dies before completing it (as the gateway's own claims). */
const INBOUND_CLAIM_TTL_MS = 60_000
/** Acks of one batch (`POST /api/channels/deliveries/ack`) written at once, each on its own pooled connection. */
const ACKS_AT_ONCE = 8
const PROVIDER_EVENT_PRUNE_EVERY_MS = 60_000
/**
 * Signatures are kept past the ±5-minute timestamp window (a replay that old is refused as stale); updates and
 * callbacks past any provider's retries (Telegram and Slack retry within hours).
 */
const PROVIDER_EVENT_RETENTION = { signatureRetentionMs: 10 * 60_000, eventRetentionMs: 7 * 86_400_000, limit: 1_000 }

const draining = new Unavailable({ message: "this process is shutting down; reconnect", retryAfterSeconds: 2 })

export const layer = HttpApiBuilder.group(Api, "channels", Effect.fn(function*(handlers) {
  const channels = yield* ChannelStore
  const feed = yield* DeliveryFeed
  const sessions = yield* SessionStore
  const identity = yield* Identity
  const tokens = yield* Tokens
  const quotaPolicy = yield* QuotaPolicy
  const lifecycle = yield* WebLifecycle
  const metrics = yield* Metrics
  const webhookAllowedHosts = yield* ProviderAddress.webhookAllowedHostsConfig

  const countClaimLost = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.tapError(effect, (error) =>
      error instanceof ClaimLost ? metrics.inc("open_cowork_cloud_channel_claim_lost_total", { kind: error.kind }) : Effect.void)

  /**
   * An inbound chat message on the binding (`prompt`, and `inbound` after its claims): prompts the session routed to the
   * thread (created on its first message), or answers the ask that session waits on when the text answers it.
   */
  const promptFromChat = (caller: ChannelAccess, bindingId: string, payload: typeof ChannelPromptBody.Type) =>
    Effect.gen(function*() {
        const orgId = caller.scope.orgId
        const binding = yield* activeBinding(caller, bindingId)
        yield* admit(orgId, binding, payload.externalUserId)
        const title = payload.threadTitle ?? `${binding.displayName}: ${payload.externalThreadId}`.slice(0, 200)
        const { route, created } = yield* channels.routeFor(orgId, binding.id, payload.externalThreadId, sessions.create(orgId, { title }))
        // A plain reply on a thread whose session waits on a question (or a permission, by keyword) answers it.
        const pending = created ? undefined : chatTextAnswer(yield* sessions.view(orgId, route.sessionId), payload.text)
        if (pending !== undefined) {
          const answered = yield* sessions.answer(orgId, route.sessionId, { ...pending, ...chatAnswerer(binding, payload.externalUserId) }).pipe(
            // Answered meanwhile (a button, another reply): this text is a prompt after all.
            Effect.catchTag("Conflict", () => Effect.succeed(undefined))
          )
          if (answered !== undefined) {
            yield* metrics.inc("open_cowork_cloud_channel_prompts_total", { result: "answered" })
            return { sessionId: route.sessionId, commandId: answered.commandId, sessionCreated: false, duplicate: false, answered: true }
          }
        }
        const enqueued = yield* sessions.prompt(orgId, route.sessionId, {
          text: payload.text,
          idempotencyKey: payload.providerEventId,
          quota: quotaPolicy.promptQuota
        }).pipe(quotaPolicy.counted)
        yield* metrics.inc("open_cowork_cloud_channel_prompts_total", { result: enqueued.created ? "prompted" : "duplicate" })
        return { sessionId: route.sessionId, commandId: enqueued.commandId, sessionCreated: created, duplicate: !enqueued.created }
    })

  /** One fenced ack (the single route and every ack of a batch). */
  const ackOne = (scope: DeliveryScope, deliveryId: string, payload: Omit<DeliveryAck, "id">) =>
    Effect.gen(function*() {
      const delivery = yield* countClaimLost(
        feed.ack(scope, deliveryId, { ...payload, error: payload.error === undefined ? undefined : redact(payload.error) })
      )
      if (delivery.status === "sent" || delivery.status === "failed" || delivery.status === "dead") {
        yield* metrics.inc("open_cowork_cloud_channel_delivery_acks_total", { status: delivery.status })
      }
      return delivery
    })

  const access: Effect.Effect<ChannelAccess, never, CurrentPrincipal> = Effect.gen(function*() {
    const principal = yield* CurrentPrincipal
    if (principal.scopes.includes("admin")) return { principal, gateway: false, scope: { orgId: principal.orgId } }
    const bindingIds = yield* channels.gatewayBindings(principal.orgId, principal.tokenId)
    return { principal, gateway: true, scope: { orgId: principal.orgId, bindingIds } }
  })

  const visibleBinding = (caller: ChannelAccess, bindingId: string) =>
    caller.scope.bindingIds !== undefined && !caller.scope.bindingIds.includes(bindingId)
      ? Effect.fail(bindingNotFound())
      : channels.getBinding(caller.scope.orgId, bindingId)

  const activeBinding = (caller: ChannelAccess, bindingId: string) =>
    Effect.flatMap(visibleBinding(caller, bindingId), (binding) =>
      binding.status === "active"
        ? Effect.succeed(binding)
        : Effect.fail(new Conflict({ message: `the binding is ${binding.status}`, details: { status: binding.status } })))

  const resolve = (orgId: string, binding: ChannelBinding, externalUserId: string) =>
    Effect.gen(function*() {
      const linked = yield* channels.findIdentity(orgId, binding.providerKind, binding.providerId, externalUserId)
      const role = linked === undefined ? undefined : yield* identity.role(orgId, linked.accountId)
      const principal = linked === undefined || role === undefined ? null : { accountId: linked.accountId, role }
      const resolved: ResolvedIdentity = { identity: linked ?? null, principal, mayPrompt: binding.inboundPolicy === "open" || principal !== null }
      return resolved
    })

  /** Refuses an external user the binding's `inboundPolicy` does not admit (`linked_only`: linked to a member). */
  const admit = (orgId: string, binding: ChannelBinding, externalUserId: string) =>
    Effect.flatMap(resolve(orgId, binding, externalUserId), (resolved) =>
      resolved.mayPrompt
        ? Effect.void
        : Effect.fail(new Forbidden({ message: "this external user is not linked to a member of the org (the binding admits linked users only)" })))

  /**
   * Where a chat answer goes: the caller's active binding, its user admitted by the binding's policy, and the route of
   * the answer's thread (404 when no session is bound to it).
   */
  const answering = (bindingId: string, payload: ChannelAnswerBody) =>
    Effect.gen(function*() {
      const caller = yield* access
      const orgId = caller.scope.orgId
      const binding = yield* activeBinding(caller, bindingId)
      yield* admit(orgId, binding, payload.externalUserId)
      const route = (yield* channels.listRoutes(orgId, binding.id)).find((r) => r.externalThreadId === payload.externalThreadId)
      if (route === undefined) return yield* new NotFound({ message: "no session is bound to this thread" })
      return { orgId, binding, route }
    })

  /** A chat answer's answerer: the provider's user id on that kind of chat (a later press is told who answered). */
  const chatAnswerer = (binding: ChannelBinding, externalUserId: string, externalUserName?: string) => ({
    answeredBy: externalUserId,
    answeredVia: binding.providerKind,
    ...(externalUserName === undefined ? {} : { answeredByName: externalUserName })
  })

  /**
   * The session command of a chat answer. Button `choices` (one option index per question) are resolved against the
   * session's pending question: not pending is the same 409 as answering it twice; indexes that do not fit are a 400
   * naming `choices`.
   */
  const answerOf = (orgId: string, sessionId: string, body: ChannelAnswerBody) => {
    const missing = (field: string) => Effect.fail(new BadRequest({ message: `\`${field}\` is required for ${body.action}`, field }))
    switch (body.action) {
      case "permission-respond":
        if (body.permissionId === undefined) return missing("permissionId")
        if (body.response === undefined) return missing("response")
        return Effect.succeed<AskAnswer>({ kind: "permission_respond", permissionId: body.permissionId, response: body.response })
      case "question-reply": {
        const requestId = body.requestId
        if (requestId === undefined) return missing("requestId")
        if (body.answers !== undefined) return checkQuestionReply(sessions, orgId, sessionId, { kind: "question_reply", requestId, answers: body.answers })
        const choices = body.choices
        if (choices === undefined) return missing("answers")
        return Effect.gen(function*() {
          const view = yield* sessions.view(orgId, sessionId)
          const pending = view.pendingQuestions.find((q) => q.requestId === requestId)
          if (pending === undefined) {
            // Refused as the store refuses an answer: answered already (by whom, when), the session aborted, or not pending.
            const ask: AskAnswer = { kind: "question_reply", requestId, answers: [] }
            return yield* ((yield* closedAskRefusal(sessions, orgId, sessionId, ask, view)) ?? askNotPending(ask))
          }
          const resolved = choiceAnswer(pending, choices)
          if (resolved._tag === "Invalid") return yield* new BadRequest({ message: resolved.message, field: "choices" })
          return resolved.answer
        })
      }
      case "question-reject":
        if (body.requestId === undefined) return missing("requestId")
        return Effect.succeed<AskAnswer>({ kind: "question_reject", requestId: body.requestId })
    }
  }

  /**
   * Provider-event retention, riding on the gateways' claim polls (no timer of its own in an idle cloud): at most
   * once a minute per web process, one bounded batch.
   */
  let lastPruneAt = Number.NEGATIVE_INFINITY
  const pruneProviderEvents = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    if (now - lastPruneAt < PROVIDER_EVENT_PRUNE_EVERY_MS) return
    lastPruneAt = now
    const pruned = yield* channels.pruneProviderEvents(PROVIDER_EVENT_RETENTION)
    if (pruned > 0) yield* metrics.inc("open_cowork_cloud_channel_provider_events_pruned_total", pruned)
  })

  const claimedLastBy = (caller: ChannelAccess) => (caller.gateway ? caller.principal.tokenId : undefined)

  /** An admin (or gateway) change to the org's channels, in its audit log (references only: no credential, no text). */
  const audited = (caller: ChannelAccess, action: string, target: string, details: Record<string, unknown>) =>
    recordAudit({ orgId: caller.scope.orgId, actor: actorOf(caller.principal), action, target, details })
  const bindingDetails = (binding: ChannelBinding) => ({
    providerKind: binding.providerKind,
    providerId: binding.providerId,
    status: binding.status
  })

  return handlers.handleAll({
    listBindings: () =>
      Effect.gen(function*() {
        const caller = yield* access
        return { bindings: yield* channels.listBindings(caller.scope.orgId, caller.scope.bindingIds) }
      }),
    createBinding: ({ payload }) =>
      Effect.gen(function*() {
        const caller = yield* access
        if (payload.providerKind === "webhook") yield* checkWebhookTarget(payload.externalTarget, webhookAllowedHosts)
        yield* checkCredentialRef(payload.credentialRef, caller.scope.orgId)
        yield* checkCredentialRef(payload.inboundCredentialRef, caller.scope.orgId, "inboundCredentialRef")
        const binding = yield* channels.createBinding(caller.scope.orgId, payload)
        yield* audited(caller, "channel.binding_created", `channel_binding:${binding.id}`, bindingDetails(binding))
        return { binding }
      }),
    getBinding: ({ params }) =>
      Effect.gen(function*() {
        return { binding: yield* visibleBinding(yield* access, params.id) }
      }),
    updateBinding: ({ params, payload }) =>
      Effect.gen(function*() {
        const caller = yield* access
        if (payload.externalTarget !== undefined && (yield* visibleBinding(caller, params.id)).providerKind === "webhook") {
          yield* checkWebhookTarget(payload.externalTarget, webhookAllowedHosts)
        }
        yield* checkCredentialRef(payload.credentialRef, caller.scope.orgId)
        yield* checkCredentialRef(payload.inboundCredentialRef, caller.scope.orgId, "inboundCredentialRef")
        const patch = { ...payload, statusDetail: payload.statusDetail === undefined || payload.statusDetail === null ? payload.statusDetail : redact(payload.statusDetail) }
        const binding = yield* channels.updateBinding(caller.scope.orgId, params.id, patch)
        yield* audited(caller, "channel.binding_updated", `channel_binding:${binding.id}`, { ...bindingDetails(binding), fields: Object.keys(payload) })
        return { binding }
      }),
    deleteBinding: ({ params }) =>
      Effect.gen(function*() {
        const caller = yield* access
        const binding = yield* channels.deleteBinding(caller.scope.orgId, params.id)
        yield* audited(caller, "channel.binding_deleted", `channel_binding:${binding.id}`, bindingDetails(binding))
        return { binding }
      }),
    reportBindingStatus: ({ params, payload }) =>
      Effect.gen(function*() {
        const caller = yield* access
        const binding = yield* visibleBinding(caller, params.id)
        if (binding.status === "disabled") {
          return yield* new Conflict({ message: "the binding is disabled; an admin enables it", details: { status: binding.status } })
        }
        const detail = payload.detail === undefined || payload.detail === null ? null : redact(payload.detail)
        return {
          binding: yield* channels.updateBinding(caller.scope.orgId, params.id, {
            status: payload.status,
            statusDetail: payload.status === "active" ? null : detail
          })
        }
      }),

    listRoutes: ({ params }) =>
      Effect.gen(function*() {
        const caller = yield* access
        yield* visibleBinding(caller, params.id)
        return { routes: yield* channels.listRoutes(caller.scope.orgId, params.id) }
      }),
    bindSession: ({ params, payload }) =>
      Effect.gen(function*() {
        const caller = yield* access
        return { route: yield* channels.bindSession(caller.scope.orgId, params.id, payload.externalThreadId, payload.sessionId) }
      }),
    unbindSession: ({ params }) =>
      Effect.gen(function*() {
        const caller = yield* access
        return { route: yield* channels.unbindSession(caller.scope.orgId, params.id, params.rid) }
      }),

    prompt: ({ params, payload }) => Effect.flatMap(access, (caller) => promptFromChat(caller, params.id, payload)),
    inbound: ({ params, payload }) =>
      Effect.gen(function*() {
        const caller = yield* access
        const orgId = caller.scope.orgId
        yield* visibleBinding(caller, params.id)
        const { signatureKey, ...message } = payload
        const claim = (providerEventId: string, kind: "signature" | "message") =>
          channels.claimProviderEvent(orgId, { channelBindingId: params.id, providerEventId, kind, ttlMs: INBOUND_CLAIM_TTL_MS, claimedBy: caller.principal.tokenId })
        const complete = (providerEventId: string, claimToken: string, outcome: "prompted" | "ignored" | "accepted" | "released") =>
          channels.completeProviderEvent(orgId, { channelBindingId: params.id, providerEventId, claimToken, outcome }).pipe(Effect.ignore)
        // The signed request's replay key: taken for good once handled, released when it could not be (a retry of it is accepted).
        let settle = (_handled: boolean): Effect.Effect<void> => Effect.void
        if (signatureKey !== undefined) {
          const signature = yield* claim(signatureKey, "signature")
          if (signature.status === "completed") return { status: "replayed" as const, sessionId: null }
          if (signature.status !== "claimed" || signature.claimToken === null) return { status: "in_progress" as const, sessionId: null }
          const signatureToken = signature.claimToken
          settle = (handled) => complete(signatureKey, signatureToken, handled ? "accepted" : "released")
        }
        const event = yield* claim(message.providerEventId, "message").pipe(Effect.onError(() => settle(false)))
        if (event.status === "completed") return yield* Effect.as(settle(true), { status: "duplicate" as const, sessionId: null })
        if (event.status !== "claimed" || event.claimToken === null) return yield* Effect.as(settle(false), { status: "in_progress" as const, sessionId: null })
        const eventToken = event.claimToken
        const done = (outcome: "prompted" | "ignored") => Effect.andThen(complete(message.providerEventId, eventToken, outcome), settle(true))
        return yield* promptFromChat(caller, params.id, message).pipe(
          Effect.flatMap((accepted) =>
            Effect.as(done("prompted"), { status: accepted.duplicate ? "duplicate" as const : "prompted" as const, sessionId: accepted.sessionId })),
          // The binding's policy or state, or the session gone: done for good, as the gateway would have completed it.
          Effect.catchTags({
            Forbidden: () => Effect.as(done("ignored"), { status: "refused" as const, sessionId: null }),
            Conflict: () => Effect.as(done("ignored"), { status: "refused" as const, sessionId: null }),
            NotFound: () => Effect.as(done("ignored"), { status: "refused" as const, sessionId: null })
          }),
          // Not queued (a quota's 429, a failure): both claims released, so the provider's retry is taken.
          Effect.onError(() => Effect.andThen(complete(message.providerEventId, eventToken, "released"), settle(false)))
        )
      }),
    answer: ({ params, payload }) =>
      Effect.gen(function*() {
        const { orgId, binding, route } = yield* answering(params.id, payload)
        // Only the session this thread routes to: an ask id of another session (forged button data) is not pending here.
        const answer = yield* answerOf(orgId, route.sessionId, payload)
        // Recorded with the answer: a different answer pressed later is told who answered (a 409's `answeredBy`).
        const enqueued = yield* sessions.answer(orgId, route.sessionId, { ...answer, ...chatAnswerer(binding, payload.externalUserId, payload.externalUserName) })
          .pipe(Effect.catchTag("Conflict", (refused) => Effect.fail(refusalForChat(refused, binding.providerKind))))
        return { sessionId: route.sessionId, commandId: enqueued.commandId }
      }),
    checkAnswer: ({ params, payload }) =>
      Effect.gen(function*() {
        const { orgId, binding, route } = yield* answering(params.id, payload)
        const ask = yield* askNamedBy(payload)
        const refused = yield* closedAskRefusal(sessions, orgId, route.sessionId, ask, yield* sessions.view(orgId, route.sessionId))
        if (refused !== undefined) return yield* Effect.fail(refusalForChat(refused, binding.providerKind))
        return { sessionId: route.sessionId }
      }),
    claimProviderEvent: ({ payload }) =>
      Effect.gen(function*() {
        const caller = yield* access
        yield* visibleBinding(caller, payload.channelBindingId)
        return yield* channels.claimProviderEvent(caller.scope.orgId, {
          channelBindingId: payload.channelBindingId,
          providerEventId: payload.providerEventId,
          kind: payload.kind ?? "message",
          ttlMs: payload.claimTtlMs ?? DEFAULT_CLAIM_TTL_MS,
          claimedBy: caller.principal.tokenId
        })
      }),
    completeProviderEvent: ({ payload }) =>
      Effect.gen(function*() {
        const caller = yield* access
        yield* visibleBinding(caller, payload.channelBindingId)
        return yield* countClaimLost(channels.completeProviderEvent(caller.scope.orgId, payload))
      }),

    listIdentities: () =>
      Effect.gen(function*() {
        return { identities: yield* channels.listIdentities((yield* access).scope.orgId) }
      }),
    createIdentity: ({ payload }) =>
      Effect.gen(function*() {
        const orgId = (yield* access).scope.orgId
        if ((yield* identity.role(orgId, payload.accountId)) === undefined) {
          return yield* new NotFound({ message: "no member of this org has that account id" })
        }
        const linked = yield* channels.createIdentity(orgId, payload)
        yield* audited(yield* access, "channel.identity_linked", `channel_identity:${linked.id}`, { accountId: payload.accountId })
        return { identity: linked }
      }),
    deleteIdentity: ({ params }) =>
      Effect.gen(function*() {
        const caller = yield* access
        const unlinked = yield* channels.deleteIdentity(caller.scope.orgId, params.id)
        yield* audited(caller, "channel.identity_unlinked", `channel_identity:${unlinked.id}`, { accountId: unlinked.accountId })
        return { identity: unlinked }
      }),
    resolveIdentity: ({ payload }) =>
      Effect.gen(function*() {
        const caller = yield* access
        const binding = yield* visibleBinding(caller, payload.channelBindingId)
        return yield* resolve(caller.scope.orgId, binding, payload.externalUserId)
      }),

    listDeliveries: ({ query }) =>
      Effect.gen(function*() {
        const caller = yield* access
        if (query.channelBindingId !== undefined) yield* visibleBinding(caller, query.channelBindingId)
        return yield* feed.list(caller.scope, { ...query, limit: query.limit ?? DEFAULT_PAGE_SIZE })
      }),
    deliveryStream: ({ request }) =>
      Effect.gen(function*() {
        if (yield* lifecycle.isDraining) return yield* draining
        return yield* deliveryStreamResponse((yield* access).scope, request.method === "HEAD")
      }),
    claimDeliveries: ({ payload }) =>
      Effect.gen(function*() {
        const caller = yield* access
        yield* pruneProviderEvents
        // Expired claims go back to the feed first (bounded by the drain cap), so a dead gateway's work is claimable.
        const reaped = yield* feed.reap
        if (reaped.returned > 0) yield* metrics.inc("open_cowork_cloud_channel_expired_claims_reaped_total", { outcome: "pending" }, reaped.returned)
        if (reaped.dead > 0) yield* metrics.inc("open_cowork_cloud_channel_expired_claims_reaped_total", { outcome: "dead" }, reaped.dead)
        const requested = payload.channelBindingIds
        const bindingIds = requested === undefined
          ? caller.scope.bindingIds
          : requested.filter((id) => caller.scope.bindingIds === undefined || caller.scope.bindingIds.includes(id))
        const limits = yield* quotaPolicy.forOrg(caller.scope.orgId)
        const { deliveries, deferredByQuota } = yield* feed.claim({ orgId: caller.scope.orgId, bindingIds }, {
          limit: payload.limit ?? 10,
          ttlMs: payload.claimTtlMs ?? DEFAULT_CLAIM_TTL_MS,
          claimedBy: caller.principal.tokenId,
          replica: payload.gatewayId,
          deliveriesPerHour: limits.channel_deliveries_per_hour
        })
        if (deferredByQuota > 0) {
          yield* metrics.inc("open_cowork_cloud_quota_rejections_total", { quota: "channel_deliveries_per_hour" }, deferredByQuota)
        }
        if (deliveries.length > 0) yield* metrics.inc("open_cowork_cloud_channel_deliveries_claimed_total", deliveries.length)
        return { deliveries }
      }),
    getDelivery: ({ params }) =>
      Effect.gen(function*() {
        return { delivery: yield* feed.get((yield* access).scope, params.id) }
      }),
    ackDelivery: ({ params, payload }) =>
      Effect.gen(function*() {
        return { delivery: yield* ackOne((yield* access).scope, params.id, payload) }
      }),
    ackDeliveries: ({ payload }) =>
      Effect.gen(function*() {
        const { scope } = yield* access
        // Each fenced on its own (a refused ack does not refuse the rest), a few at once: one after the other, a batch of
        // 100 took seconds on a busy database, long enough for the last ones' claims to expire.
        const results = yield* Effect.forEach(payload.acks, ({ id, ...ack }) =>
          ackOne(scope, id, ack).pipe(
            Effect.map((delivery) => ({ id, delivery, refused: null })),
            Effect.catchTags({
              ClaimLost: () => Effect.succeed({ id, delivery: null, refused: "claim_lost" as const }),
              NotFound: () => Effect.succeed({ id, delivery: null, refused: "not_found" as const })
            })
          ), { concurrency: ACKS_AT_ONCE })
        return { results }
      }),
    renewDelivery: ({ params, payload }) =>
      Effect.gen(function*() {
        const caller = yield* access
        return { delivery: yield* countClaimLost(feed.renew(caller.scope, params.id, payload.claimToken, payload.claimTtlMs ?? DEFAULT_CLAIM_TTL_MS)) }
      }),
    retryDelivery: ({ params }) =>
      Effect.gen(function*() {
        const caller = yield* access
        const delivery = yield* feed.retry(caller.scope, params.id, claimedLastBy(caller))
        yield* audited(caller, "channel.delivery_retried", `channel_delivery:${delivery.id}`, { channelBindingId: delivery.channelBindingId })
        return { delivery }
      }),
    deadLetterDelivery: ({ params, payload }) =>
      Effect.gen(function*() {
        const caller = yield* access
        const reason = payload.reason === undefined ? undefined : redact(payload.reason)
        const delivery = yield* feed.deadLetter(caller.scope, params.id, reason, claimedLastBy(caller))
        yield* audited(caller, "channel.delivery_dead_lettered", `channel_delivery:${delivery.id}`, { channelBindingId: delivery.channelBindingId })
        return { delivery }
      }),

    listCursors: ({ query }) =>
      Effect.gen(function*() {
        const caller = yield* access
        if (query.channelBindingId !== undefined) yield* visibleBinding(caller, query.channelBindingId)
        const bindingIds = query.channelBindingId === undefined ? caller.scope.bindingIds : [query.channelBindingId]
        return { cursors: yield* channels.listCursors(caller.scope.orgId, bindingIds) }
      }),
    putCursor: ({ payload }) =>
      Effect.gen(function*() {
        const caller = yield* access
        yield* visibleBinding(caller, payload.channelBindingId)
        return { cursor: yield* channels.putCursor(caller.scope.orgId, payload, caller.principal.tokenId) }
      }),

    gatewayGrant: () =>
      Effect.gen(function*() {
        const caller = yield* access
        const channelBindingIds = caller.scope.bindingIds ?? (yield* channels.listBindings(caller.scope.orgId)).map((b) => b.id)
        return {
          tokenId: caller.principal.tokenId,
          scope: caller.gateway ? "gateway" as const : "admin" as const,
          channelBindingIds,
          listAllowed: true,
          retryAllowed: true,
          deadLetterAllowed: true
        }
      }),
    listGatewayTokens: () =>
      Effect.gen(function*() {
        const orgId = (yield* access).scope.orgId
        const grants = yield* channels.listGatewayGrants(orgId)
        const all = yield* tokens.list(orgId)
        return {
          tokens: all
            .filter((token) => token.scopes.includes("gateway"))
            .map((token) => ({ token, channelBindingIds: grants.get(token.id) ?? [] }))
        }
      }),
    createGatewayToken: ({ payload }) =>
      Effect.gen(function*() {
        const orgId = (yield* access).scope.orgId
        const channelBindingIds = [...new Set(payload.channelBindingIds)]
        const existing = yield* channels.listBindings(orgId, channelBindingIds)
        if (existing.length !== channelBindingIds.length) return yield* bindingNotFound()
        const issued = yield* tokens.issue({
          orgId,
          name: payload.name,
          scopes: ["gateway"],
          expiresInMs: payload.expiresInSeconds === undefined ? undefined : payload.expiresInSeconds * 1_000
        }).pipe(Effect.orDie)
        // A binding deleted meanwhile: the token is revoked rather than left serving fewer bindings than asked.
        yield* channels.grantGatewayToken(orgId, issued.tokenId, channelBindingIds).pipe(
          Effect.tapError(() => tokens.revoke(issued.tokenId, { orgId }).pipe(Effect.ignore))
        )
        yield* audited(yield* access, "token.created", `token:${issued.tokenId}`, {
          name: issued.view.name,
          scopes: [...issued.view.scopes],
          expiresAt: issued.view.expiresAt,
          channelBindingIds
        })
        return { token: issued.view, channelBindingIds, secret: Redacted.value(issued.token) }
      })
  })
}))
