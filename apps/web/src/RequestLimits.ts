import { type Principal, RateLimited } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { RateLimiter } from "@cowork/services"
import { Config, ConfigProvider, Context, Effect, Layer } from "effect"
import { HttpServerRequest } from "effect/http"
import { clientAddress, parseTrustedProxies } from "./ClientAddress.ts"

const MINUTE_MS = 60_000

/**
 * HTTP rate limits per principal and per org, and the back-off for sources that keep failing authentication. All in
 * this process's memory (no database write per request); with `OPEN_COWORK_CLOUD_WEB_REPLICAS` = N each replica
 * enforces 1/N of every limit. Refusals are 429 with `Retry-After` and `retryAfterMs`.
 */
export interface RequestLimitSettings {
  readonly principalPerMinute: number
  readonly orgPerMinute: number
  readonly replicas: number
  readonly authFailuresPerMinute: number
  readonly authBlockMs: number
}

export class RequestLimits extends Context.Service<RequestLimits, {
  readonly settings: RequestLimitSettings
  /** Before authenticating: a source blocked by the back-off is refused without touching the token store. */
  readonly checkSource: Effect.Effect<void, RateLimited, HttpServerRequest.HttpServerRequest>
  /** A presented credential was refused: counts toward the source's back-off. */
  readonly noteAuthFailure: Effect.Effect<void, never, HttpServerRequest.HttpServerRequest>
  /** After authenticating: one request from the principal and its org. */
  readonly admit: (principal: Principal) => Effect.Effect<void, RateLimited>
  /** The client's address, through trusted proxies (`OPEN_COWORK_CLOUD_TRUSTED_PROXIES`): what per-address limits key on. */
  readonly sourceOf: (request: HttpServerRequest.HttpServerRequest) => string
}>()("cowork/web/RequestLimits") {}

export const layer = Layer.effect(
  RequestLimits,
  Effect.gen(function*() {
    const limiter = yield* RateLimiter
    const metrics = yield* Metrics
    const replicas = Math.max(1, yield* Config.Int("OPEN_COWORK_CLOUD_WEB_REPLICAS").pipe(Config.withDefault(1)))
    const share = (perMinute: number) => ({ limit: Math.max(1, Math.floor(perMinute / replicas)), perMs: MINUTE_MS })
    const principalPerMinute = yield* Config.Int("OPEN_COWORK_CLOUD_RATE_LIMIT_PRINCIPAL_PER_MIN").pipe(Config.withDefault(600))
    const orgPerMinute = yield* Config.Int("OPEN_COWORK_CLOUD_RATE_LIMIT_ORG_PER_MIN").pipe(Config.withDefault(3_000))
    const principalRule = share(principalPerMinute)
    const orgRule = share(orgPerMinute)
    const backoff = {
      maxFailures: yield* Config.Int("OPEN_COWORK_CLOUD_AUTH_FAILURES_PER_MIN").pipe(Config.withDefault(10)),
      windowMs: MINUTE_MS,
      blockMs: yield* Config.Int("OPEN_COWORK_CLOUD_AUTH_BLOCK_MS").pipe(Config.withDefault(60_000))
    }

    const trustedRaw = yield* Config.String("OPEN_COWORK_CLOUD_TRUSTED_PROXIES").pipe(Config.withDefault(""))
    const trusted = trustedRaw.trim() === "" ? undefined : parseTrustedProxies(trustedRaw)
    if (trustedRaw.trim() !== "" && trusted === undefined) {
      return yield* Effect.fail(new Config.ConfigError(new ConfigProvider.SourceError({
        message: "OPEN_COWORK_CLOUD_TRUSTED_PROXIES must list IP addresses or CIDR ranges, comma-separated"
      })))
    }
    const sourceOf = (request: HttpServerRequest.HttpServerRequest) => clientAddress(request, trusted)

    const refuse = (scope: "principal" | "org" | "auth_backoff", retryAfterMs: number, message: string) =>
      metrics.inc("open_cowork_cloud_rate_limited_total", { scope }).pipe(
        Effect.andThen(Effect.fail(new RateLimited({ message, retryAfterMs, details: { limit: scope } })))
      )

    return RequestLimits.of({
      sourceOf,
      settings: {
        principalPerMinute,
        orgPerMinute,
        replicas,
        authFailuresPerMinute: backoff.maxFailures,
        authBlockMs: backoff.blockMs
      },
      checkSource: Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const blocked = yield* limiter.blockedFor(`auth:${sourceOf(request)}`)
        if (blocked !== undefined) {
          return yield* refuse("auth_backoff", blocked, "too many failed authentications from this address; retry later")
        }
      }),
      noteAuthFailure: Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        yield* limiter.recordFailure(`auth:${sourceOf(request)}`, backoff)
      }),
      admit: (principal) =>
        Effect.gen(function*() {
          const principalWait = yield* limiter.take(`principal:${principal.tokenId}`, principalRule)
          if (principalWait !== undefined) return yield* refuse("principal", principalWait, "request rate limit reached for this caller")
          if (principal.kind !== "org") return
          const orgWait = yield* limiter.take(`org:${principal.orgId}`, orgRule)
          if (orgWait !== undefined) return yield* refuse("org", orgWait, "request rate limit reached for this organization")
        })
    })
  })
)
