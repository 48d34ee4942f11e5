import {
  Api,
  Conflict,
  MAX_WEBHOOK_BODY_BYTES,
  NotFound,
  PayloadTooLarge,
  RateLimited,
  SignatureRefused,
  type WebhookRejectionReason
} from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { readBoundedBody, SecretAdapter, WebhookSignature, WorkflowStore } from "@cowork/services"
import { Config, Effect, Option } from "effect"
import { HttpServerResponse } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import { RequestLimits } from "./RequestLimits.ts"
import { QuotaPolicy } from "./QuotaPolicy.ts"
import { webhookSecretContext } from "./WorkflowHandlers.ts"

const RATE_WINDOW_MS = 60_000
/** Sources tracked at once; the least recently seen are forgotten first (a flood of spoofed sources cannot grow it). */
const MAX_TRACKED_SOURCES = 10_000

/**
 * A fixed-window counter per source address, per process: enough to blunt one noisy or abusive sender without a
 * shared store (the durable replay refusal does not depend on it).
 */
const makeRateLimiter = (perMinute: number) => {
  const windows = new Map<string, { start: number; count: number }>()
  return (source: string, now: number): number | undefined => {
    const current = windows.get(source)
    if (current === undefined || now - current.start >= RATE_WINDOW_MS) {
      windows.delete(source)
      if (windows.size >= MAX_TRACKED_SOURCES) windows.delete(windows.keys().next().value!)
      windows.set(source, { start: now, count: 1 })
      return undefined
    }
    current.count++
    return current.count > perMinute ? current.start + RATE_WINDOW_MS - now : undefined
  }
}

/** The public, HMAC-signed workflow trigger. Every refusal is counted by reason; the body says only what failed. */
export const layer = HttpApiBuilder.group(Api, "webhooks", Effect.fn(function*(handlers) {
  const store = yield* WorkflowStore
  const secrets = yield* SecretAdapter
  const metrics = yield* Metrics
  const requestLimits = yield* RequestLimits
  const quotaPolicy = yield* QuotaPolicy
  const perMinute = yield* Config.Int("OPEN_COWORK_CLOUD_WEBHOOK_RATE_PER_MINUTE").pipe(Config.withDefault(120))
  const limited = makeRateLimiter(perMinute)

  /** Counts the refusal by reason, then fails with the declared error (its wire form builds the body). */
  const reject = <E>(reason: WebhookRejectionReason, error: E) =>
    Effect.andThen(metrics.inc("open_cowork_cloud_webhook_rejections_total", { reason }), Effect.fail(error))
  const tooLarge = () =>
    new PayloadTooLarge({ message: `webhook body exceeds ${MAX_WEBHOOK_BODY_BYTES} bytes`, details: { limitBytes: MAX_WEBHOOK_BODY_BYTES } })

  return handlers.handleRaw("workflow", ({ params, request }) =>
    Effect.gen(function*() {
      // The sender's timestamp is wall-clock time, so the window is checked against this host's wall clock.
      const now = Date.now()
      // The client's address, through trusted proxies: a proxy's address would put every sender in one bucket.
      const source = requestLimits.sourceOf(request)
      const waitMs = limited(source, now)
      if (waitMs !== undefined) {
        const seconds = Math.max(1, Math.ceil(waitMs / 1000))
        return yield* reject("rate_limited", new RateLimited({
          message: "too many webhook deliveries from this source; retry later",
          retryAfterMs: seconds * 1000
        }))
      }
      const body = yield* readBoundedBody(request, MAX_WEBHOOK_BODY_BYTES)
      if (body === undefined) return yield* reject("body_too_large", tooLarge())

      const timestamp = request.headers[WebhookSignature.TIMESTAMP_HEADER]
      const signature = request.headers[WebhookSignature.SIGNATURE_HEADER]
      if (timestamp === undefined || signature === undefined || timestamp === "" || signature === "") {
        return yield* reject("missing_signature", new SignatureRefused({
          message: `missing \`${WebhookSignature.TIMESTAMP_HEADER}\` or \`${WebhookSignature.SIGNATURE_HEADER}\` header`
        }))
      }
      if (!WebhookSignature.isFresh(timestamp, now)) {
        return yield* reject("stale_timestamp", new SignatureRefused({ message: "the webhook timestamp is outside the accepted ±5 minute window" }))
      }
      const target = yield* store.webhookTarget(params.id)
      const noWebhook = new NotFound({ message: "no such workflow webhook" })
      if (Option.isNone(target)) return yield* reject("not_found", noWebhook)
      const enabled = target.value.triggers.filter((trigger) => trigger.enabled)
      if (enabled.length === 0) return yield* reject("not_found", noWebhook)

      let matched: string | undefined
      for (const trigger of enabled) {
        const secret = yield* secrets.decrypt(target.value.orgId, trigger.sealed, webhookSecretContext(trigger.triggerId)).pipe(
          Effect.map((bytes) => new TextDecoder().decode(bytes)),
          Effect.option
        )
        if (Option.isSome(secret) && WebhookSignature.verify(secret.value, timestamp, body, signature)) {
          matched = trigger.triggerId
          break
        }
      }
      if (matched === undefined) return yield* reject("bad_signature", new SignatureRefused({ message: "the webhook signature does not match" }))

      let payload: unknown
      try {
        payload = body.length === 0 ? null : JSON.parse(body.toString("utf8"))
      } catch {
        payload = { raw: body.toString("utf8") }
      }
      const limits = yield* quotaPolicy.forOrg(target.value.orgId)
      const started = yield* quotaPolicy.counted(store.startRun(target.value.orgId, params.id, {
        triggerType: "webhook",
        triggerId: matched,
        payload,
        deliveryKey: WebhookSignature.deliveryKey(params.id, signature),
        runsPerHour: limits.workflow_runs_per_hour
      })).pipe(
        Effect.map(Option.some),
        Effect.catchTags({
          Replayed: () => Effect.succeed(Option.none<never>()),
          Conflict: () => Effect.succeed(undefined),
          NotFound: () => Effect.succeed(undefined),
          RateLimited: (refusal) => reject("rate_limited", refusal)
        })
      )
      if (started === undefined) return yield* reject("disabled", new Conflict({ message: "this workflow is not active" }))
      if (Option.isNone(started)) return yield* reject("replayed", new Conflict({ message: "this webhook signature was already accepted" }))
      yield* metrics.inc("open_cowork_cloud_webhook_deliveries_total")
      yield* metrics.inc("open_cowork_cloud_scheduler_runs_started_total", { trigger: "webhook" })
      return HttpServerResponse.jsonUnsafe({ run: started.value }, { status: 202 })
    }))
}))
