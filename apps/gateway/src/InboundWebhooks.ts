import {
  answerSummary,
  completes,
  type InboundMessage,
  type InboundParse,
  type InboundRefused,
  type Press,
  pressInProgress,
  type PressOutcome,
  pressUnavailable,
  type ProviderKind,
  refusedPress,
  reselect,
  unchosen
} from "@cowork/channels"
import { Metrics } from "@cowork/observability"
import { RateLimiter, readBoundedBody } from "@cowork/services"
import { Effect, Option } from "effect"
import type { HttpServerRequest } from "effect/http"
import { HttpServerResponse } from "effect/http"
import { BindingCredentials, type CredentialUnresolved } from "./BindingCredentials.ts"
import { CloudChannels, type CloudUnavailable } from "./CloudChannels.ts"
import { GatewayConfig } from "./GatewayConfig.ts"
import { Providers } from "./Providers.ts"

type Outcome =
  | "prompted" | "duplicate" | "ignored" | "selected" | "challenge" | "missing_signature" | "stale_timestamp" | "bad_signature" | "replayed"
  | "bad_request" | "body_too_large" | "rate_limited" | "auth_backoff" | "unknown_provider" | "unbound" | "error" | "overloaded"

const STATUS_CODE: Readonly<Record<number, string>> = {
  400: "bad_request", 401: "unauthorized", 404: "not_found", 409: "conflict", 413: "payload_too_large", 429: "rate_limited", 503: "unavailable"
}

const errorBody = (status: number, message: string, retryAfterMs?: number) =>
  HttpServerResponse.jsonUnsafe(
    { error: { code: STATUS_CODE[status] ?? "error", message, ...(retryAfterMs === undefined ? {} : { details: { retryAfterMs } }) } },
    {
      status,
      headers: retryAfterMs === undefined ? {} : { "retry-after": String(Math.max(1, Math.ceil(retryAfterMs / 1000))) }
    }
  )

/** The press a message carries (a pressed answer button), to acknowledge on the provider. */
const pressOf = (message: InboundMessage): Press | undefined =>
  message.pressedMessage === undefined
    ? undefined
    : { target: message.externalTarget, threadId: message.externalThreadId, userId: message.externalUserId, message: message.pressedMessage }

/**
 * A Slack button press: Slack never retries an interaction, and shows its user a bare error for any answer but a 200
 * within 3 s. So a press that would be answered 503 (being taken by another replica, the cloud unavailable) is
 * answered 200 with an ephemeral note saying what happened instead; other providers (Telegram retries the update, the
 * Events API and signed webhooks retry) keep the 503.
 */
const slackPress = (kind: ProviderKind, parse: InboundParse): Press | undefined =>
  kind === "slack" && parse._tag === "Message" && parse.message.answer !== undefined ? pressOf(parse.message) : undefined

/** Failures from one source within a minute before it is blocked, and for how long. */
const AUTH_BACKOFF = { maxFailures: 10, windowMs: 60_000, blockMs: 5 * 60_000 }

/**
 * `POST /webhooks/:providerId`: per-source rate limit and auth-failure back-off, the 1 MiB body cap, the provider's
 * signature scheme, the signature's replay key claimed through the cloud (shared by every replica) while the request
 * is handled, then the cloud claims the provider event and prompts the bound session with the provider event id as
 * idempotency key. A provider retry of the same event, or the same event posted to another replica, prompts once; a
 * request answered 503 (the cloud unavailable) releases its signature, so the provider's retry of it is accepted.
 */
export const make = Effect.gen(function*() {
  const config = yield* GatewayConfig
  const providers = yield* Providers
  const cloud = yield* CloudChannels
  const metrics = yield* Metrics
  const limiter = yield* RateLimiter
  const credentials = yield* BindingCredentials

  const count = (outcome: Outcome) => metrics.inc("open_cowork_gateway_webhook_requests_total", { outcome })

  const unavailable = (providerId: string, error: CloudUnavailable) =>
    Effect.gen(function*() {
      yield* count("error")
      yield* metrics.inc("open_cowork_gateway_errors_total", { operation: "inbound" })
      yield* Effect.logWarning("inbound webhook not handed to the cloud").pipe(Effect.annotateLogs({ provider_id: providerId, error: error.message }))
    })

  /**
   * Tells the provider what came of a press (Telegram answers the callback; the message shows the answer or the
   * selection so far). Bounded and best effort: the request's answer does not wait longer than this.
   */
  const acknowledge = (providerId: string, press: Press | undefined, outcome: PressOutcome) => {
    const provider = providers.get(providerId)
    return press === undefined || provider?.acknowledge === undefined
      ? Effect.void
      : provider.acknowledge(press, outcome).pipe(Effect.timeoutOption("1500 millis"), Effect.asVoid)
  }

  /** What a verified request comes to; `retry`: answered 503, the provider should send it again. */
  const handle = (providerId: string, kind: ProviderKind, parse: InboundParse, viaBinding: string | undefined) =>
    Effect.gen(function*() {
      switch (parse._tag) {
        case "Challenge":
          yield* count("challenge")
          return { response: HttpServerResponse.jsonUnsafe({ challenge: parse.challenge }), retry: false }
        case "Ignored":
          yield* count("ignored")
          yield* acknowledge(providerId, parse.press, { _tag: "NotTaken", note: "This button does not answer anything." })
          return { response: HttpServerResponse.jsonUnsafe({ status: "ignored" }), retry: false }
        case "Message": {
          const { answer, pressedMessage } = parse.message
          const press = pressOf(parse.message)
          // A pick that leaves a question unchosen: nothing for the cloud yet, the message shows the selection so far
          // (its buttons' data carry it, so the press that completes it answers every question).
          // Only a user who may answer there changes it (the binding's inbound policy, as for the answer itself), and
          // only while the ask takes its answer: a pick on one answered or closed is told why, as a full pick is.
          if (answer !== undefined && !completes(answer)) {
            const may = yield* cloud.mayAnswer(providerId, parse.message, viaBinding)
            if (may.status !== "admitted") {
              yield* count(may.status === "unbound" ? "unbound" : "ignored")
              yield* acknowledge(providerId, press, may.status === "unbound"
                ? { _tag: "NotTaken", note: "This chat is not bound to a session." }
                : refusedPress(may.refusal, kind, parse.message.externalUserId))
              return { response: HttpServerResponse.jsonUnsafe({ status: may.status }), retry: false }
            }
            yield* count("selected")
            const buttons = pressedMessage?.buttons
            yield* acknowledge(providerId, press, buttons === undefined
              ? { _tag: "NotTaken", note: "This message can no longer be changed; reply with your answers instead." }
              : { _tag: "Selected", buttons: reselect(buttons, answer), remaining: unchosen(answer) })
            return { response: HttpServerResponse.jsonUnsafe({ status: "selected" }), retry: false }
          }
          const labels = { provider_id: providerId, provider_kind: kind }
          yield* metrics.inc("open_cowork_gateway_incoming_messages_total")
          yield* metrics.inc("open_cowork_gateway_provider_incoming_messages_total", labels)
          const result = yield* cloud.inbound(providerId, kind, parse.message, viaBinding)
          yield* count(result.status === "in_progress" ? "duplicate" : result.status === "refused" ? "ignored" : result.status)
          if (result.status === "prompted") yield* metrics.inc("open_cowork_gateway_prompted_messages_total")
          // A press: answered on the provider, and the message shows the answer the cloud took (bounded, best effort).
          // One being handled by another replica is left to the provider's retry (Slack's: a note, see `slackPress`).
          if (answer !== undefined && result.status !== "in_progress") {
            yield* acknowledge(providerId, press, result.status === "prompted"
              ? { _tag: "Answered", summary: answerSummary(pressedMessage?.buttons, answer) }
              : result.status === "duplicate"
              ? { _tag: "NotTaken", note: "Already answered." }
              : result.status === "unbound"
              ? { _tag: "NotTaken", note: "This chat is not bound to a session." }
              : refusedPress(result.refusal, kind, parse.message.externalUserId))
          }
          if (result.status === "in_progress") {
            // Another replica is handling this very event: it answers the press and shows the answer.
            const slack = slackPress(kind, parse)
            if (slack !== undefined) {
              yield* acknowledge(providerId, slack, pressInProgress)
              return { response: HttpServerResponse.jsonUnsafe({ status: "in_progress" }), retry: false }
            }
            // A provider retry finds it completed (or claims it if that replica died).
            return { response: errorBody(503, "this event is being handled; retry later", 5_000), retry: true }
          }
          // Slack wants a plain 200 for events and interactions alike.
          const accepted = result.status === "prompted" && kind !== "slack"
          return { response: HttpServerResponse.jsonUnsafe({ status: result.status }, { status: accepted ? 202 : 200 }), retry: false }
        }
      }
    })

  /**
   * A plain message (no answer): one request to the cloud claims the signature's replay key and the provider event,
   * prompts, and completes both (or releases both when it could not prompt: a 503 here, and the provider's retry of
   * this very request is accepted). A replay is 409, an event being handled elsewhere 503 (retry), a duplicate 200.
   */
  const plainMessage = (providerId: string, kind: ProviderKind, message: InboundMessage, replayKey: string | undefined, viaBinding: string | undefined) =>
    Effect.gen(function*() {
      const result = yield* cloud.message(providerId, message, replayKey, viaBinding)
      if (result.status === "replayed") {
        yield* count("replayed")
        return errorBody(409, "this signature was already accepted")
      }
      yield* metrics.inc("open_cowork_gateway_incoming_messages_total")
      yield* metrics.inc("open_cowork_gateway_provider_incoming_messages_total", { provider_id: providerId, provider_kind: kind })
      yield* count(result.status === "in_progress" ? "duplicate" : result.status === "refused" ? "ignored" : result.status)
      if (result.status === "in_progress") return errorBody(503, "this event is being handled; retry later", 5_000)
      if (result.status === "prompted") yield* metrics.inc("open_cowork_gateway_prompted_messages_total")
      // Slack wants a plain 200 for events.
      return HttpServerResponse.jsonUnsafe({ status: result.status }, { status: result.status === "prompted" && kind !== "slack" ? 202 : 200 })
    })

  /** A binding's own inbound secret could not be resolved: the binding's error, and the provider should retry later. */
  const secretUnresolved = (providerId: string, channelBindingId: string, error: CredentialUnresolved) =>
    Effect.gen(function*() {
      yield* count("error")
      yield* metrics.inc("open_cowork_gateway_errors_total", { operation: "credential" })
      yield* Effect.logWarning("binding inbound secret not resolved").pipe(
        Effect.annotateLogs({ provider_id: providerId, channel_binding_id: channelBindingId, error: error.message })
      )
      yield* cloud.reportBindingStatus(channelBindingId, "error", error.message).pipe(Effect.catchTag("CloudUnavailable", () => Effect.void))
      return errorBody(503, "this binding's inbound secret cannot be resolved on the gateway; retry later", 60_000)
    })

  /**
   * `POST /webhooks/:providerId` (the provider's inbound secret), or `POST /webhooks/:providerId/:bindingId` (that
   * binding's own `inboundCredentialRef`, and only that binding: 404 when it has none).
   */
  /** Requests being handled now (bounded by `maxInboundInFlight`). */
  let inFlight = 0

  const handleRequest = (providerId: string, request: HttpServerRequest.HttpServerRequest, bindingId?: string) =>
    Effect.gen(function*() {
      const now = Date.now()
      const source = Option.getOrElse(request.remoteAddress, () => "unknown")
      const blocked = yield* limiter.blockedFor(`auth:${source}`)
      if (blocked !== undefined) {
        yield* count("auth_backoff")
        return errorBody(429, "too many refused requests from this source; retry later", blocked)
      }
      const waitMs = yield* limiter.take(`rate:${source}`, { limit: config.webhookRatePerMinute, perMs: 60_000 })
      if (waitMs !== undefined) {
        yield* count("rate_limited")
        return errorBody(429, "too many webhook requests from this source; retry later", waitMs)
      }
      const configured = config.providers.find((entry) => entry.config.id === providerId)
      const provider = providers.get(providerId)
      if (configured === undefined || provider?.verifyInbound === undefined) {
        yield* count("unknown_provider")
        return errorBody(404, "no inbound provider with this id")
      }
      const body = yield* readBoundedBody(request, config.maxBodyBytes)
      if (body === undefined) {
        yield* count("body_too_large")
        return errorBody(413, `body exceeds ${config.maxBodyBytes} bytes`)
      }
      const headers: Record<string, string | undefined> = {}
      for (const [key, value] of Object.entries(request.headers)) headers[key.toLowerCase()] = value
      const own = bindingId === undefined
        ? { _tag: "Provider" as const }
        : yield* credentials.inboundSecret(providerId, bindingId).pipe(
          Effect.map((secret) => secret === undefined ? { _tag: "None" as const } : { _tag: "Own" as const, secret }),
          Effect.catchTag("CredentialUnresolved", (error) => Effect.succeed({ _tag: "Unresolved" as const, error }))
        )
      if (own._tag === "None") {
        yield* count("unbound")
        // Counted like a refused signature: probing binding ids backs off like guessing secrets.
        yield* limiter.recordFailure(`auth:${source}`, AUTH_BACKOFF)
        return errorBody(404, "no binding of this provider with its own inbound secret at this path")
      }
      if (own._tag === "Unresolved") return yield* secretUnresolved(providerId, bindingId!, own.error)
      const secret = own._tag === "Own" ? own.secret : undefined
      const verified = yield* provider.verifyInbound({ headers, rawBody: body, nowMs: now }, secret).pipe(
        Effect.map((value) => ({ _tag: "Ok" as const, value })),
        Effect.catchTag("InboundRefused", (refused: InboundRefused) => Effect.succeed({ _tag: "Refused" as const, refused }))
      )
      if (verified._tag === "Refused") {
        const { reason, message } = verified.refused
        yield* count(reason)
        if (reason === "bad_request") return errorBody(400, message)
        yield* limiter.recordFailure(`auth:${source}`, AUTH_BACKOFF)
        return errorBody(401, message)
      }
      const { parse, replayKey } = verified.value
      const kind = configured.config.kind
      // A plain message, the bulk of inbound traffic: its signature, provider event and prompt in one request.
      if (parse._tag === "Message" && parse.message.answer === undefined) return yield* plainMessage(providerId, kind, parse.message, replayKey, bindingId)
      // The signature's replay key is claimed while the request is handled and settled after: taken for good once
      // handled, released when the answer is a 503 (the provider's retry of this very request is then accepted).
      const signature = replayKey === undefined ? undefined : yield* cloud.claimSignature(providerId, replayKey, bindingId).pipe(
        // Not reaching the cloud: nothing was claimed. A Slack press is told so (Slack would not retry a 503).
        Effect.catchTag("CloudUnavailable", (error) => {
          const slack = slackPress(kind, parse)
          return slack === undefined
            ? Effect.fail(error)
            : Effect.as(Effect.andThen(unavailable(providerId, error), acknowledge(providerId, slack, pressUnavailable)), { status: "unavailable" as const })
        })
      )
      if (signature?.status === "unavailable") return HttpServerResponse.jsonUnsafe({ status: "unavailable" })
      if (signature?.status === "replayed") {
        yield* count("replayed")
        return errorBody(409, "this signature was already accepted")
      }
      if (signature?.status === "in_progress") {
        yield* count("duplicate")
        const slack = slackPress(kind, parse)
        if (slack === undefined) return errorBody(503, "this request is being handled; retry later", 5_000)
        yield* acknowledge(providerId, slack, pressInProgress)
        return HttpServerResponse.jsonUnsafe({ status: "in_progress" })
      }
      const handled = yield* handle(providerId, kind, parse, bindingId).pipe(
        Effect.catchTag("CloudUnavailable", (error) =>
          Effect.gen(function*() {
            yield* unavailable(providerId, error)
            // Not taken: the signature is released (`retry`) whatever the answer, so a retry of this request is accepted.
            const slack = slackPress(kind, parse)
            if (slack === undefined) return { response: errorBody(503, "the cloud is unavailable; retry later", 5_000), retry: true }
            yield* acknowledge(providerId, slack, pressUnavailable)
            return { response: HttpServerResponse.jsonUnsafe({ status: "unavailable" }), retry: true }
          }))
      )
      if (signature?.status === "claimed") yield* signature.settle(!handled.retry)
      return handled.response
    }).pipe(
      // The signature claim itself did not reach the cloud: nothing was claimed, the provider's retry is accepted.
      Effect.catchTag("CloudUnavailable", (error) =>
        Effect.as(unavailable(providerId, error), errorBody(503, "the cloud is unavailable; retry later", 5_000)))
    )
  /**
   * At most `maxInboundInFlight` requests are handled at once; one more is 503 + Retry-After at once (nothing read,
   * nothing claimed: the provider retries). A cloud that answers slowly would otherwise pile up requests — their
   * senders long gone — and the memory they hold, without bound.
   */
  return (providerId: string, request: HttpServerRequest.HttpServerRequest, bindingId?: string) =>
    Effect.suspend(() => {
      if (inFlight >= config.maxInboundInFlight) {
        return Effect.as(count("overloaded"), errorBody(503, "too many inbound requests in progress; retry later", 1_000))
      }
      inFlight++
      return handleRequest(providerId, request, bindingId).pipe(Effect.ensuring(Effect.sync(() => {
        inFlight--
      })))
    })
})
