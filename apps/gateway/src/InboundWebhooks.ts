import type { InboundRefused } from "@cowork/channels"
import { Metrics } from "@cowork/observability"
import { RateLimiter } from "@cowork/services"
import { Effect, Option, Stream } from "effect"
import type { HttpServerRequest } from "effect/http"
import { HttpServerResponse } from "effect/http"
import { CloudChannels } from "./CloudChannels.ts"
import { GatewayConfig } from "./GatewayConfig.ts"
import { Providers } from "./Providers.ts"

type Outcome =
  | "prompted" | "duplicate" | "ignored" | "challenge" | "missing_signature" | "stale_timestamp" | "bad_signature" | "replayed"
  | "bad_request" | "body_too_large" | "rate_limited" | "auth_backoff" | "unknown_provider" | "unbound" | "error"

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

/** Failures from one source within a minute before it is blocked, and for how long. */
const AUTH_BACKOFF = { maxFailures: 10, windowMs: 60_000, blockMs: 5 * 60_000 }

/**
 * `POST /webhooks/:providerId`: per-source rate limit and auth-failure back-off, the 1 MiB body cap, the provider's
 * signature scheme, the signature's replay key recorded once through the cloud (shared by every replica), then the
 * cloud claims the provider event and prompts the bound session with the provider event id as idempotency key.
 * A provider retry of the same event, or the same event posted to another replica, prompts once.
 */
export const make = Effect.gen(function*() {
  const config = yield* GatewayConfig
  const providers = yield* Providers
  const cloud = yield* CloudChannels
  const metrics = yield* Metrics
  const limiter = yield* RateLimiter

  const count = (outcome: Outcome) => metrics.inc("open_cowork_gateway_webhook_requests_total", { outcome })

  return (providerId: string, request: HttpServerRequest.HttpServerRequest) =>
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
      if (Number(request.headers["content-length"] ?? 0) > config.maxBodyBytes) {
        yield* count("body_too_large")
        return errorBody(413, `body exceeds ${config.maxBodyBytes} bytes`)
      }
      const chunks: Array<Uint8Array> = []
      let size = 0
      let overLimit = false
      yield* request.stream.pipe(
        Stream.runForEachWhile((chunk) =>
          Effect.sync(() => {
            size += chunk.length
            if (size > config.maxBodyBytes) {
              overLimit = true
              return false
            }
            chunks.push(chunk)
            return true
          })
        ),
        Effect.orDie
      )
      if (overLimit) {
        yield* count("body_too_large")
        return errorBody(413, `body exceeds ${config.maxBodyBytes} bytes`)
      }
      const headers: Record<string, string | undefined> = {}
      for (const [key, value] of Object.entries(request.headers)) headers[key.toLowerCase()] = value
      const verified = yield* provider.verifyInbound({ headers, rawBody: Buffer.concat(chunks), nowMs: now }).pipe(
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
      if (replayKey !== undefined) {
        const first = yield* cloud.consumeReplayKey(providerId, replayKey)
        if (!first) {
          yield* count("replayed")
          return errorBody(409, "this signature was already accepted")
        }
      }
      switch (parse._tag) {
        case "Challenge":
          yield* count("challenge")
          return HttpServerResponse.jsonUnsafe({ challenge: parse.challenge })
        case "Ignored":
          yield* count("ignored")
          return HttpServerResponse.jsonUnsafe({ status: "ignored" })
        case "Message": {
          const labels = { provider_id: providerId, provider_kind: configured.config.kind }
          yield* metrics.inc("open_cowork_gateway_incoming_messages_total")
          yield* metrics.inc("open_cowork_gateway_provider_incoming_messages_total", labels)
          const result = yield* cloud.inbound(providerId, configured.config.kind, parse.message)
          yield* count(result.status === "in_progress" ? "duplicate" : result.status === "refused" ? "ignored" : result.status)
          if (result.status === "prompted") yield* metrics.inc("open_cowork_gateway_prompted_messages_total")
          // Another replica is handling this very event: a provider retry finds it completed (or claims it if that replica died).
          if (result.status === "in_progress") return errorBody(503, "this event is being handled; retry later", 5_000)
          // Slack wants a plain 200 for events and interactions alike.
          const accepted = result.status === "prompted" && configured.config.kind !== "slack"
          return HttpServerResponse.jsonUnsafe({ status: result.status }, { status: accepted ? 202 : 200 })
        }
      }
    }).pipe(
      Effect.catchTag("CloudUnavailable", (error) =>
        Effect.gen(function*() {
          yield* count("error")
          yield* metrics.inc("open_cowork_gateway_errors_total", { operation: "inbound" })
          yield* Effect.logWarning("inbound webhook not handed to the cloud").pipe(Effect.annotateLogs({ provider_id: providerId, error: error.message }))
          // The provider retries a non-2xx: nothing was claimed, so the retry prompts once.
          return errorBody(503, "the cloud is unavailable; retry later", 5_000)
        }))
    )
})
