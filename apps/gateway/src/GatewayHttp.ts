import { SERVICE_VERSION } from "@cowork/domain"
import { Metrics, redactDeep } from "@cowork/observability"
import { NodeServer } from "@cowork/services"
import { Effect, Layer, Option, Redacted, Ref } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import * as Crypto from "node:crypto"
import { BindingCredentials } from "./BindingCredentials.ts"
import { CloudChannels, type DeliveryView } from "./CloudChannels.ts"
import { GatewayConfig } from "./GatewayConfig.ts"
import { feedHealthy, GatewayState } from "./GatewayState.ts"
import * as InboundWebhooks from "./InboundWebhooks.ts"
import { Providers, usable } from "./Providers.ts"

const DELIVERY_STATUSES = ["pending", "claimed", "sent", "failed", "dead"] as const
const ID_PATTERN = /^[A-Za-z0-9_-]{1,100}$/

const errorResponse = (status: number, code: string, message: string) =>
  HttpServerResponse.jsonUnsafe({ error: { code, message } }, { status })

const sameSecret = (presented: string, expected: string): boolean => {
  const a = Crypto.createHash("sha256").update(presented).digest()
  const b = Crypto.createHash("sha256").update(expected).digest()
  return Crypto.timingSafeEqual(a, b)
}

/** The gateway's own HTTP surface (health, readiness, operator routes, inbound webhooks) on OPEN_COWORK_GATEWAY_PORT. */
const routes = Layer.unwrap(Effect.gen(function*() {
  const config = yield* GatewayConfig
  const state = yield* GatewayState
  const providers = yield* Providers
  const metrics = yield* Metrics
  const cloud = yield* CloudChannels
  const inbound = yield* InboundWebhooks.make
  const credentials = yield* BindingCredentials
  const fixed = [Redacted.value(config.token), ...Option.toArray(Option.map(config.adminToken, Redacted.value)), ...providers.secrets]
  /** The gateway's own secrets and every binding credential resolved so far. */
  const hidden = () => [...fixed, ...credentials.secrets()]

  /** Every answer that can carry configuration or errors is scrubbed of the gateway's own secrets, then redacted. */
  const safeJson = (body: unknown, status = 200) => {
    let text = JSON.stringify(redactDeep(body))
    for (const secret of hidden()) if (secret.length >= 4) text = text.split(secret).join("[REDACTED]")
    return HttpServerResponse.text(text, { status, contentType: "application/json" })
  }

  /** Operator routes need `Authorization: Bearer <OPEN_COWORK_GATEWAY_ADMIN_TOKEN>`. */
  const admin = <E, R>(handler: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
    (request: HttpServerRequest.HttpServerRequest) => {
      if (Option.isNone(config.adminToken)) {
        return Effect.succeed(errorResponse(403, "forbidden", "operator routes are disabled: OPEN_COWORK_GATEWAY_ADMIN_TOKEN is not set"))
      }
      const header = request.headers.authorization ?? ""
      const presented = header.startsWith("Bearer ") ? header.slice(7).trim() : ""
      if (presented === "" || !sameSecret(presented, Redacted.value(config.adminToken.value))) {
        return Effect.succeed(errorResponse(401, "unauthorized", "a valid admin token is required"))
      }
      return handler(request)
    }

  const scopeNow = Effect.gen(function*() {
    const known = yield* Ref.get(state.scope)
    if (known._tag === "Known") return known
    return yield* cloud.whoami.pipe(
      Effect.map((scope) => ({ _tag: "Known" as const, scope })),
      Effect.tap((value) => Ref.set(state.scope, value)),
      Effect.catchTag("CloudUnavailable", (error) => Effect.succeed({ _tag: "Failed" as const, error: error.message }))
    )
  })

  const deliveryOperator = Effect.gen(function*() {
    const scope = yield* scopeNow
    const disabledReason = Option.isNone(config.adminToken)
      ? "OPEN_COWORK_GATEWAY_ADMIN_TOKEN is not set"
      : scope._tag !== "Known"
      ? `the cloud did not confirm this gateway's token (${scope._tag === "Failed" ? scope.error : "not checked yet"})`
      : scope.scope.channelBindingIds.length === 0
      ? "the gateway token is bound to no channel binding"
      : null
    const grant = scope._tag === "Known" ? scope.scope : undefined
    return {
      scope: grant?.scope ?? "gateway",
      channelBindingIds: grant?.channelBindingIds ?? [],
      listAllowed: disabledReason === null && grant?.listAllowed === true,
      retryAllowed: disabledReason === null && grant?.retryAllowed === true,
      deadLetterAllowed: disabledReason === null && grant?.deadLetterAllowed === true,
      disabledReason
    }
  })

  const readiness = Effect.gen(function*() {
    const started = yield* Ref.get(state.started)
    const draining = yield* Ref.get(state.draining)
    const feed = yield* Ref.get(state.feed)
    const statuses = yield* providers.statuses
    const ok = started && !draining && feedHealthy(feed) && statuses.some((status) => usable(status.state))
    return {
      ok,
      status: draining ? "draining" : !started ? "starting" : ok ? "ready" : "degraded",
      started,
      draining,
      feed: { healthy: feedHealthy(feed), streamConnected: feed.streamConnected, lastClaimOk: feed.lastClaimOk },
      providers: statuses.map(({ id, kind, state: providerState, started: providerStarted, detail }) => ({
        id, kind, state: providerState, started: providerStarted, detail
      }))
    }
  })

  const counters = Effect.gen(function*() {
    const read = (name: Parameters<typeof metrics.read>[0]) => metrics.read(name as "open_cowork_gateway_deliveries_sent_total")
    const names = [
      "open_cowork_gateway_incoming_messages_total", "open_cowork_gateway_prompted_messages_total",
      "open_cowork_gateway_deliveries_received_total", "open_cowork_gateway_deliveries_sent_total",
      "open_cowork_gateway_delivery_retries_total", "open_cowork_gateway_delivery_dead_letters_total",
      "open_cowork_gateway_stream_reconnects_total"
    ] as const
    const result: Record<string, number> = {}
    for (const name of names) result[name.replace("open_cowork_gateway_", "")] = yield* read(name)
    result.in_flight = yield* Ref.get(state.inFlight)
    return result
  })

  const listDeliveries = (request: HttpServerRequest.HttpServerRequest) =>
    Effect.gen(function*() {
      const url = new URL(request.url, "http://gateway")
      const status = url.searchParams.get("status") ?? undefined
      const channelBindingId = url.searchParams.get("channelBindingId") ?? undefined
      const limitText = url.searchParams.get("limit")
      if (status !== undefined && !(DELIVERY_STATUSES as ReadonlyArray<string>).includes(status)) {
        return errorResponse(400, "bad_request", `status must be one of ${DELIVERY_STATUSES.join(", ")}`)
      }
      if (channelBindingId !== undefined && !ID_PATTERN.test(channelBindingId)) return errorResponse(400, "bad_request", "channelBindingId is malformed")
      const limit = limitText === null ? undefined : Number(limitText)
      if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 500)) return errorResponse(400, "bad_request", "limit must be 1..500")
      const operator = yield* deliveryOperator
      if (!operator.listAllowed) return errorResponse(503, "unavailable", operator.disabledReason ?? "delivery listing is disabled")
      const deliveries = yield* cloud.listDeliveries({ status, channelBindingId, limit })
      return safeJson({ deliveries })
    }).pipe(Effect.catchTag("CloudUnavailable", (error) => Effect.succeed(safeJson({ error: { code: "unavailable", message: error.message } }, 503))))

  const control = (action: "retry" | "dead-letter") => () =>
    Effect.gen(function*() {
      const { id } = yield* HttpRouter.params
      if (id === undefined || !ID_PATTERN.test(id)) return errorResponse(400, "bad_request", "delivery id is malformed")
      const operator = yield* deliveryOperator
      if (!(action === "retry" ? operator.retryAllowed : operator.deadLetterAllowed)) {
        return errorResponse(503, "unavailable", operator.disabledReason ?? `${action} is disabled`)
      }
      const delivery: DeliveryView = yield* (action === "retry" ? cloud.retry(id) : cloud.deadLetter(id))
      return safeJson({ delivery })
    }).pipe(
      Effect.catchTag("DeliveryNotFound", () => Effect.succeed(errorResponse(404, "not_found", "no such delivery last claimed by this gateway"))),
      Effect.catchTag("DeliveryConflict", (error) => Effect.succeed(safeJson({ error: { code: "conflict", message: error.message } }, 409))),
      Effect.catchTag("CloudUnavailable", (error) => Effect.succeed(safeJson({ error: { code: "unavailable", message: error.message } }, 503)))
    )

  return Layer.mergeAll(
    HttpRouter.add("GET", "/health", Effect.gen(function*() {
      const draining = yield* Ref.get(state.draining)
      return HttpServerResponse.jsonUnsafe({ ok: true, status: draining ? "draining" : "ok", mode: "cloud" })
    })),
    HttpRouter.add("GET", "/ready", Effect.map(readiness, (body) => HttpServerResponse.jsonUnsafe(body, { status: body.ok ? 200 : 503 }))),
    HttpRouter.add("GET", "/metrics", admin(() =>
      Effect.gen(function*() {
        yield* metrics.set("open_cowork_gateway_uptime_seconds", Math.floor((Date.now() - state.startedAtMs) / 1000))
        return HttpServerResponse.text(yield* metrics.exposition, { contentType: metrics.contentType })
      }))),
    HttpRouter.add("GET", "/diagnostics", admin(() =>
      Effect.gen(function*() {
        return safeJson({
          generatedAt: new Date().toISOString(),
          redaction: "secrets-redacted",
          role: "gateway",
          version: SERVICE_VERSION,
          gatewayId: config.gatewayId,
          config: {
            cloudUrl: config.cloudUrl,
            port: config.port,
            claimBatch: config.claimBatch,
            concurrency: config.concurrency,
            claimTtlMs: config.claimTtlMs,
            pollIntervalMs: config.pollIntervalMs,
            shutdownGraceMs: config.shutdownGraceMs,
            webhookRatePerMinute: config.webhookRatePerMinute,
            maxBodyBytes: config.maxBodyBytes,
            credentialTtlMs: config.credentialTtlMs,
            // Where a binding's `file:` credentialRef is read (`<dir>/<orgId>/<name>`); null: such references are refused.
            credentialsDir: config.credentialsDir ?? null,
            tokenConfigured: true,
            adminTokenConfigured: Option.isSome(config.adminToken),
            providers: config.providers.map((entry) => entry.config)
          },
          readiness: yield* readiness,
          counters: yield* counters,
          deliveryOperator: yield* deliveryOperator
        })
      }))),
    HttpRouter.add("GET", "/deliveries", admin(listDeliveries)),
    HttpRouter.add("POST", "/deliveries/:id/retry", admin(control("retry"))),
    HttpRouter.add("POST", "/deliveries/:id/dead-letter", admin(control("dead-letter"))),
    HttpRouter.add("POST", "/webhooks/:providerId", (request) =>
      Effect.flatMap(HttpRouter.params, ({ providerId }) => inbound(providerId ?? "", request))),
    HttpRouter.add("POST", "/webhooks/:providerId/:bindingId", (request) =>
      Effect.flatMap(HttpRouter.params, ({ bindingId, providerId }) => inbound(providerId ?? "", request, bindingId ?? "")))
  )
}))

/**
 * Serves `routes` on OPEN_COWORK_CLOUD_HOST:OPEN_COWORK_GATEWAY_PORT (`NodeServer`: the OPEN_COWORK_CLOUD_HTTP_*
 * timeouts; on shutdown a keep-alive client is told `Connection: close`), within OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS.
 */
export const layer = Layer.unwrap(Effect.gen(function*() {
  const config = yield* GatewayConfig
  yield* Effect.logInfo("gateway listening").pipe(Effect.annotateLogs({ host: config.host, port: config.port }))
  return HttpRouter.serve(routes, { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provide(NodeServer.layerOn(config.port, { host: config.host, gracefulShutdownMs: config.shutdownGraceMs }))
  )
}))
