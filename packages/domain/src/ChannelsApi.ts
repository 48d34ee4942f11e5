import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { Authentication, RequiredScopes } from "./ApiCore.ts"
import * as ApiError from "./ApiError.ts"
import { ApiTokenView } from "./Auth.ts"
import {
  AckDeliveriesBody,
  AckDeliveryBody,
  BindSessionBody,
  ChannelAnswerAccepted,
  ChannelAnswerOpen,
  ChannelAnswerBody,
  ChannelBinding,
  ChannelCursor,
  ChannelDelivery,
  ChannelIdentity,
  ChannelInboundBody,
  ChannelInboundResult,
  ChannelPromptAccepted,
  ChannelPromptBody,
  ChannelRoute,
  ClaimDeliveriesBody,
  ClaimedDelivery,
  ClaimProviderEventBody,
  CompleteProviderEventBody,
  CreateChannelBindingBody,
  CreateChannelIdentityBody,
  CreateGatewayTokenBody,
  DeadLetterBody,
  DeliveryAckResult,
  DeliveryAvailable,
  DeliveryStatus,
  GatewayGrant,
  ProviderEventClaim,
  PutCursorBody,
  RenewDeliveryBody,
  ReportChannelBindingStatusBody,
  ResolvedIdentity,
  ResolveIdentityBody,
  UpdateChannelBindingBody
} from "./Channel.ts"
import { Id, PageLimit, SessionCursor } from "./Input.ts"

const ADMIN: ReadonlyArray<"admin"> = ["admin"]
const GATEWAY: ReadonlyArray<"gateway"> = ["gateway"]
const GATEWAY_OR_ADMIN: ReadonlyArray<"gateway" | "admin"> = ["gateway", "admin"]

const byId = { id: Id }

/** `{ <key>: <object> }`, the shape of a response carrying one object. */
const envelope = <const K extends string, S extends Schema.Constraint>(key: K, schema: S) =>
  Schema.Struct({ [key]: schema } as { readonly [k in K]: S })
/** `{ <key>: [<item>, …] }`, the shape of a response carrying a whole list. */
const listOf = <const K extends string, S extends Schema.Constraint>(key: K, item: S) =>
  Schema.Struct({ [key]: Schema.Array(item) } as { readonly [k in K]: Schema.$Array<S> })

const BindingEnvelope = envelope("binding", ChannelBinding)
const DeliveryEnvelope = envelope("delivery", ChannelDelivery)
const RouteEnvelope = envelope("route", ChannelRoute)
const IdentityEnvelope = envelope("identity", ChannelIdentity)
const CursorEnvelope = envelope("cursor", ChannelCursor)

const DeliveryPage = Schema.Struct({
  deliveries: Schema.Array(ChannelDelivery),
  nextCursor: Schema.NullOr(Schema.String),
  totalEstimate: Schema.Number
})

const ListDeliveriesQuery = {
  status: Schema.optional(DeliveryStatus),
  channelBindingId: Schema.optional(Id),
  limit: Schema.optional(PageLimit(100)),
  cursor: Schema.optional(SessionCursor)
}

const GatewayTokenView = Schema.Struct({ token: ApiTokenView, channelBindingIds: Schema.Array(Schema.String) })
const IssuedGatewayToken = Schema.Struct({
  ...GatewayTokenView.fields,
  /** `occ_<id>_<secret>`: in this response only. */
  secret: Schema.String
})

/**
 * `/api/channels/...`: the cloud side of the gateway (issue 11). Org admins manage bindings, identities, session
 * routes and gateway tokens; a gateway token (scope `gateway`) serves only the bindings it was issued for — another
 * binding's object, like another org's, is a 404 — and can call nothing outside its routes here. Deliveries can be
 * listed, retried and dead-lettered by org admins too.
 */
export class ChannelsApi extends HttpApiGroup.make("channels")
  .add(
    // ---- bindings
    HttpApiEndpoint.get("listBindings", "/api/channels/bindings", {
      success: listOf("bindings", ChannelBinding)
    }).annotate(RequiredScopes, GATEWAY_OR_ADMIN)
      .annotate(OpenApi.Description, "The org's bindings (a gateway token: the bindings it serves). `credentialRef` is a reference, never a secret."),
    HttpApiEndpoint.post("createBinding", "/api/channels/bindings", {
      payload: CreateChannelBindingBody,
      success: BindingEnvelope.pipe(HttpApiSchema.status(201)),
      error: [ApiError.BadRequest, ApiError.Conflict]
    }).annotate(RequiredScopes, ADMIN)
      .annotate(OpenApi.Description, "Creates a binding. The credential is passed by reference in the org's namespace (`env:OPEN_COWORK_GATEWAY_CRED_<ORGKEY>__NAME` or `file:name`; see CredentialNamespace) and resolved by the gateway; a plaintext value, a path, another scheme or another org's name is refused (400 naming credentialRef)."),
    HttpApiEndpoint.get("getBinding", "/api/channels/bindings/:id", {
      params: byId,
      success: BindingEnvelope,
      error: ApiError.NotFound
    }).annotate(RequiredScopes, GATEWAY_OR_ADMIN),
    HttpApiEndpoint.patch("updateBinding", "/api/channels/bindings/:id", {
      params: byId,
      payload: UpdateChannelBindingBody,
      success: BindingEnvelope,
      error: [ApiError.BadRequest, ApiError.NotFound, ApiError.Conflict]
    }).annotate(RequiredScopes, ADMIN),
    HttpApiEndpoint.delete("deleteBinding", "/api/channels/bindings/:id", {
      params: byId,
      success: BindingEnvelope,
      error: ApiError.NotFound
    }).annotate(RequiredScopes, ADMIN)
      .annotate(OpenApi.Description, "Deletes the binding with its routes, deliveries, provider events and cursors (sessions stay)."),
    HttpApiEndpoint.post("reportBindingStatus", "/api/channels/bindings/:id/status", {
      params: byId,
      payload: ReportChannelBindingStatusBody,
      success: BindingEnvelope,
      error: [ApiError.NotFound, ApiError.Conflict]
    }).annotate(RequiredScopes, GATEWAY_OR_ADMIN)
      .annotate(OpenApi.Description, "The gateway reports provider health: `auth_required` / `error` (with a redacted detail) or `active` again. A `disabled` binding stays disabled (409)."),

    // ---- session routes
    HttpApiEndpoint.get("listRoutes", "/api/channels/bindings/:id/sessions", {
      params: byId,
      success: listOf("routes", ChannelRoute),
      error: ApiError.NotFound
    }).annotate(RequiredScopes, GATEWAY_OR_ADMIN),
    HttpApiEndpoint.post("bindSession", "/api/channels/bindings/:id/sessions", {
      params: byId,
      payload: BindSessionBody,
      success: RouteEnvelope.pipe(HttpApiSchema.status(201)),
      error: [ApiError.BadRequest, ApiError.NotFound, ApiError.Conflict]
    }).annotate(RequiredScopes, ADMIN)
      .annotate(OpenApi.Description, "Binds an existing session to an external chat / thread of the binding (409 when the thread already has a session)."),
    HttpApiEndpoint.delete("unbindSession", "/api/channels/bindings/:id/sessions/:rid", {
      params: { id: Id, rid: Id },
      success: RouteEnvelope,
      error: ApiError.NotFound
    }).annotate(RequiredScopes, ADMIN),

    // ---- inbound
    HttpApiEndpoint.post("prompt", "/api/channels/bindings/:id/prompt", {
      params: byId,
      payload: ChannelPromptBody,
      success: ChannelPromptAccepted.pipe(HttpApiSchema.status(202)),
      error: [ApiError.BadRequest, ApiError.Forbidden, ApiError.NotFound, ApiError.Conflict, ApiError.PayloadTooLarge, ApiError.RateLimited]
    }).annotate(RequiredScopes, GATEWAY)
      .annotate(OpenApi.Description, "An inbound message: prompts the session routed to `externalThreadId` (created on the thread's first message) with `idempotencyKey` = `providerEventId`, so a retried update prompts once. 403 when the binding's `inboundPolicy` is `linked_only` and the user is not linked; 409 when the binding is not active."),
    HttpApiEndpoint.post("inbound", "/api/channels/bindings/:id/inbound", {
      params: byId,
      payload: ChannelInboundBody,
      success: ChannelInboundResult,
      error: [ApiError.BadRequest, ApiError.NotFound, ApiError.RateLimited]
    }).annotate(RequiredScopes, GATEWAY)
      .annotate(OpenApi.Description, "An inbound message in one request, as `provider-events/claim` (the `signatureKey`, kind `signature`, then the provider event) + `prompt` + `provider-events/complete` would handle it: `replayed` / `in_progress` / `duplicate` without prompting; `refused` when `prompt` would be 403 / 409 / 400 / 404 / 413 (done for good); a 429 or a failure releases both claims (the provider's retry is accepted)."),
    HttpApiEndpoint.post("answer", "/api/channels/bindings/:id/answer", {
      params: byId,
      payload: ChannelAnswerBody,
      success: ChannelAnswerAccepted.pipe(HttpApiSchema.status(202)),
      error: [ApiError.BadRequest, ApiError.Forbidden, ApiError.NotFound, ApiError.Conflict, ApiError.Unavailable]
    }).annotate(RequiredScopes, GATEWAY)
      .annotate(OpenApi.Description, "A chat answer (button / reply) to a question or permission request of the routed session, queued as the session's human-in-the-loop command."),
    HttpApiEndpoint.post("checkAnswer", "/api/channels/bindings/:id/answer/check", {
      params: byId,
      payload: ChannelAnswerBody,
      success: ChannelAnswerOpen,
      error: [ApiError.BadRequest, ApiError.Forbidden, ApiError.NotFound, ApiError.Conflict]
    }).annotate(RequiredScopes, GATEWAY)
      .annotate(OpenApi.Description, "Whether the ask a chat answer names (`permissionId` / `requestId`) still takes an answer from this user, with the refusals `answer` gives (403 not admitted; 404 no session on the thread; 409 the binding not active, or `details.reason` `answered` with who / where / when, `session_aborted`, `not_pending`). The answer itself is not checked and nothing is queued: a gateway asks before it shows a partial pick of a multi-question ask."),
    HttpApiEndpoint.post("claimProviderEvent", "/api/channels/provider-events/claim", {
      payload: ClaimProviderEventBody,
      success: ProviderEventClaim,
      error: [ApiError.BadRequest, ApiError.NotFound]
    }).annotate(RequiredScopes, GATEWAY)
      .annotate(OpenApi.Description, "Durable, shared by every replica: `claimed` (process it, then complete), `in_progress` (another holder's live claim) or `completed` (a duplicate). Kind `signature` records a webhook signature digest: `claimed` while its request is handled, then completed (`accepted`) so every replay is `completed`, or `released` when the request could not be handled (the provider's retry of the same signature is then accepted)."),
    HttpApiEndpoint.post("completeProviderEvent", "/api/channels/provider-events/complete", {
      payload: CompleteProviderEventBody,
      success: ProviderEventClaim,
      error: [ApiError.BadRequest, ApiError.NotFound, ApiError.ClaimLost]
    }).annotate(RequiredScopes, GATEWAY)
      .annotate(OpenApi.Description, "Ends a claim: `prompted` / `ignored` mark the event done for good; `released` drops the claim so a retry can claim it. A claim that expired or was taken over is 409."),

    // ---- identities
    HttpApiEndpoint.get("listIdentities", "/api/channels/identities", {
      success: listOf("identities", ChannelIdentity)
    }).annotate(RequiredScopes, ADMIN),
    HttpApiEndpoint.post("createIdentity", "/api/channels/identities", {
      payload: CreateChannelIdentityBody,
      success: IdentityEnvelope.pipe(HttpApiSchema.status(201)),
      error: [ApiError.BadRequest, ApiError.NotFound, ApiError.Conflict]
    }).annotate(RequiredScopes, ADMIN)
      .annotate(OpenApi.Description, "Links an external user (provider kind + provider id + external id) to an org member."),
    HttpApiEndpoint.delete("deleteIdentity", "/api/channels/identities/:id", {
      params: byId,
      success: IdentityEnvelope,
      error: ApiError.NotFound
    }).annotate(RequiredScopes, ADMIN),
    HttpApiEndpoint.post("resolveIdentity", "/api/channels/identities/resolve", {
      payload: ResolveIdentityBody,
      success: ResolvedIdentity,
      error: [ApiError.BadRequest, ApiError.NotFound]
    }).annotate(RequiredScopes, GATEWAY_OR_ADMIN),

    // ---- deliveries
    HttpApiEndpoint.get("listDeliveries", "/api/channels/deliveries", {
      query: ListDeliveriesQuery,
      success: DeliveryPage,
      error: [ApiError.BadRequest, ApiError.NotFound]
    }).annotate(RequiredScopes, GATEWAY_OR_ADMIN)
      .annotate(OpenApi.Description, "Newest first, keyset-paginated; `status`, `channelBindingId` narrow it. A gateway token sees its bindings' deliveries only."),
    HttpApiEndpoint.get("deliveryStream", "/api/channels/deliveries/stream", {
      success: HttpApiSchema.StreamSse({ data: DeliveryAvailable }),
      error: [ApiError.RateLimited, ApiError.Unavailable]
    }).annotate(RequiredScopes, GATEWAY)
      .annotate(OpenApi.Description, "SSE wake-up: `event: delivery.available` `{channelBindingId}` when one of the token's bindings gets a delivery (backed by NOTIFY); `: keep-alive` every 15 s. Claim on every frame and also poll (a lost notification costs latency only)."),
    HttpApiEndpoint.post("claimDeliveries", "/api/channels/deliveries/claim", {
      payload: ClaimDeliveriesBody,
      success: listOf("deliveries", ClaimedDelivery),
      error: [ApiError.BadRequest, ApiError.NotFound]
    }).annotate(RequiredScopes, GATEWAY)
      .annotate(OpenApi.Description, "Claims up to `limit` due deliveries of the token's active bindings (`FOR UPDATE SKIP LOCKED`), oldest first, for `claimTtlMs`; each claim counts one attempt. Expired claims are returned to the feed first."),
    HttpApiEndpoint.get("getDelivery", "/api/channels/deliveries/:id", {
      params: byId,
      success: DeliveryEnvelope,
      error: ApiError.NotFound
    }).annotate(RequiredScopes, GATEWAY_OR_ADMIN),
    HttpApiEndpoint.post("ackDeliveries", "/api/channels/deliveries/ack", {
      payload: AckDeliveriesBody,
      success: listOf("results", DeliveryAckResult),
      error: ApiError.BadRequest
    }).annotate(RequiredScopes, GATEWAY)
      .annotate(OpenApi.Description, "Up to 100 acks in one request, each fenced by its `claimToken` exactly as `POST /api/channels/deliveries/:id/ack`; one result per ack in the same order: the delivery, or `refused` `claim_lost` (the single ack's 409) / `not_found` (404). One refused ack does not refuse the others."),
    HttpApiEndpoint.post("ackDelivery", "/api/channels/deliveries/:id/ack", {
      params: byId,
      payload: AckDeliveryBody,
      success: DeliveryEnvelope,
      error: [ApiError.BadRequest, ApiError.NotFound, ApiError.ClaimLost]
    }).annotate(RequiredScopes, GATEWAY)
      .annotate(OpenApi.Description, "Fenced by `claimToken`: 409 once the claim expired or was taken over. `failed` schedules the next attempt (server backoff: exponential with jitter, capped; at least `retryAfterMs`), or `dead` at the attempt cap."),
    HttpApiEndpoint.post("renewDelivery", "/api/channels/deliveries/:id/renew", {
      params: byId,
      payload: RenewDeliveryBody,
      success: DeliveryEnvelope,
      error: [ApiError.BadRequest, ApiError.NotFound, ApiError.ClaimLost]
    }).annotate(RequiredScopes, GATEWAY)
      .annotate(OpenApi.Description, "Extends a live claim while sending (409 when it is no longer held)."),
    HttpApiEndpoint.post("retryDelivery", "/api/channels/deliveries/:id/retry", {
      params: byId,
      success: DeliveryEnvelope,
      error: [ApiError.NotFound, ApiError.Forbidden, ApiError.Conflict]
    }).annotate(RequiredScopes, GATEWAY_OR_ADMIN)
      .annotate(OpenApi.Description, "A `failed` or `dead` delivery back to `pending` now with a fresh attempt budget. A gateway token only for deliveries it claimed last (403 otherwise); org admins for any."),
    HttpApiEndpoint.post("deadLetterDelivery", "/api/channels/deliveries/:id/dead-letter", {
      params: byId,
      payload: DeadLetterBody,
      success: DeliveryEnvelope,
      error: [ApiError.BadRequest, ApiError.NotFound, ApiError.Forbidden, ApiError.Conflict]
    }).annotate(RequiredScopes, GATEWAY_OR_ADMIN)
      .annotate(OpenApi.Description, "A `pending`, `failed` or `claimed` delivery to `dead` (a live claim's ack then gets 409). A gateway token only for deliveries it claimed last; org admins for any."),

    // ---- cursors
    HttpApiEndpoint.get("listCursors", "/api/channels/cursors", {
      query: { channelBindingId: Schema.optional(Id) },
      success: listOf("cursors", ChannelCursor),
      error: [ApiError.BadRequest, ApiError.NotFound]
    }).annotate(RequiredScopes, GATEWAY_OR_ADMIN),
    HttpApiEndpoint.put("putCursor", "/api/channels/cursors", {
      payload: PutCursorBody,
      success: CursorEnvelope,
      error: [ApiError.BadRequest, ApiError.NotFound, ApiError.Conflict]
    }).annotate(RequiredScopes, GATEWAY)
      .annotate(OpenApi.Description, "Stores a named position of a binding (e.g. a provider's update offset). With `expectedValue`, a compare-and-set: 409 when another writer moved it."),

    // ---- gateway tokens
    HttpApiEndpoint.get("gatewayGrant", "/api/channels/gateway", {
      success: GatewayGrant
    }).annotate(RequiredScopes, GATEWAY_OR_ADMIN)
      .annotate(OpenApi.Description, "What the calling token may do on the delivery feed (the gateway's `deliveryOperator`)."),
    HttpApiEndpoint.get("listGatewayTokens", "/api/channels/gateway-tokens", {
      success: listOf("tokens", GatewayTokenView)
    }).annotate(RequiredScopes, ADMIN),
    HttpApiEndpoint.post("createGatewayToken", "/api/channels/gateway-tokens", {
      payload: CreateGatewayTokenBody,
      success: IssuedGatewayToken.pipe(HttpApiSchema.status(201)),
      error: [ApiError.BadRequest, ApiError.NotFound]
    }).annotate(RequiredScopes, ADMIN)
      .annotate(OpenApi.Description, "Issues a service token with scope `gateway` bound to these bindings (the plaintext `secret` only here). Revoke it with `DELETE /api/api-tokens/:id`.")
  )
  .middleware(Authentication)
  .annotateMerge(OpenApi.annotations({ title: "Channels", description: "Channel bindings, identities, session routes, the delivery feed and provider events (issue 11)" }))
{}
