import { ProviderAddress, UpstreamClient } from "@cowork/services"
import { Effect } from "effect"
import {
  type ChannelProvider,
  classifyStatus,
  dead,
  failed,
  InboundRefused,
  type InboundParse,
  type InboundRequest,
  type OutboundMessage,
  parseRetryAfter,
  sent,
  type SendOutcome,
  type VerifiedInbound
} from "./ChannelProvider.ts"
import {
  IDEMPOTENCY_KEY_HEADER,
  isFresh,
  replayKey,
  signWebhook,
  verifyWebhook,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER
} from "./InboundSignatures.ts"
import { errorText, scrub } from "./Scrub.ts"

export interface WebhookSettings {
  readonly id: string
  /** Verifies inbound `POST /webhooks/:providerId` requests. */
  readonly inboundSecret?: string | undefined
  /** Signs outbound POSTs (same `v1=` scheme and headers); unsigned when unset. */
  readonly outboundSecret?: string | undefined
  readonly timeoutMs: number
  /**
   * Hosts a binding's URL may use although they resolve to a non-public address (`OPEN_COWORK_GATEWAY_WEBHOOK_ALLOWED_HOSTS`;
   * default none): every other target must resolve to public addresses only (`ProviderAddress`).
   */
  readonly allowedHosts?: ReadonlySet<string> | undefined
}

interface WebhookEvent {
  readonly eventId?: unknown
  readonly target?: unknown
  readonly threadId?: unknown
  readonly userId?: unknown
  readonly text?: unknown
  readonly answer?: { readonly requestId?: unknown; readonly value?: unknown; readonly choices?: unknown }
}

/** `choices`: one option index per question (0-35), at most 20 — what an answer button carries, for several questions at once. */
const choicesOf = (value: unknown): ReadonlyArray<number> | undefined =>
  Array.isArray(value) && value.length >= 1 && value.length <= 20 &&
    value.every((choice) => typeof choice === "number" && Number.isInteger(choice) && choice >= 0 && choice < 36)
    ? value as ReadonlyArray<number>
    : undefined

const str = (value: unknown, max: number): string | undefined =>
  typeof value === "string" && value !== "" && value.length <= max ? value : undefined

/**
 * The generic inbound body: `{eventId, target, userId, text, threadId?, answer?: {requestId, value} | {requestId,
 * choices}}` — `value` a permission's once / always / reject or a question's reject (or its one answer), `choices` one
 * option index per question of the ask, answering them all.
 */
const parseWebhookEvent = (body: WebhookEvent): Effect.Effect<InboundParse, InboundRefused> => {
  const eventId = str(body.eventId, 200)
  const target = str(body.target, 500)
  const userId = str(body.userId, 200)
  const text = str(body.text, 64_000)
  const missing = eventId === undefined ? "eventId" : target === undefined ? "target" : userId === undefined ? "userId" : text === undefined ? "text" : undefined
  if (missing !== undefined) return Effect.fail(new InboundRefused({ reason: "bad_request", message: `${missing} is required (a non-empty string)` }))
  const requestId = str(body.answer?.requestId, 200)
  const value = str(body.answer?.value, 200)
  const choices = choicesOf(body.answer?.choices)
  if (body.answer !== undefined && (requestId === undefined || (value === undefined && choices === undefined))) {
    return Effect.fail(new InboundRefused({ reason: "bad_request", message: "answer needs requestId and value, or requestId and choices (one option index 0-35 per question, at most 20)" }))
  }
  return Effect.succeed({
    _tag: "Message",
    message: {
      providerEventId: eventId!,
      externalTarget: target!,
      externalThreadId: str(body.threadId, 200),
      externalUserId: userId!,
      text: text!,
      answer: requestId === undefined
        ? undefined
        : choices !== undefined
        ? { requestId, question: 0, choices }
        : value !== undefined
        ? { requestId, value }
        : undefined
    }
  })
}

/**
 * The generic signature scheme (`x-open-cowork-gateway-webhook-{timestamp,signature}`, ±5 minutes, constant-time)
 * and a JSON object body; also what an inbound-mail relay signs for the email provider.
 */
export const verifySignedJson = (providerId: string, secret: string | undefined, request: InboundRequest): Effect.Effect<
  { readonly body: Record<string, unknown>; readonly replayKey: string },
  InboundRefused
> =>
  Effect.gen(function*() {
    const timestamp = request.headers[WEBHOOK_TIMESTAMP_HEADER]
    const signature = request.headers[WEBHOOK_SIGNATURE_HEADER]
    if (secret === undefined || timestamp === undefined || signature === undefined) {
      return yield* new InboundRefused({ reason: "missing_signature", message: `${WEBHOOK_TIMESTAMP_HEADER} and ${WEBHOOK_SIGNATURE_HEADER} are required` })
    }
    if (!isFresh(timestamp, request.nowMs)) {
      return yield* new InboundRefused({ reason: "stale_timestamp", message: `${WEBHOOK_TIMESTAMP_HEADER} is outside ±5 minutes` })
    }
    if (!verifyWebhook(secret, timestamp, request.rawBody, signature)) {
      return yield* new InboundRefused({ reason: "bad_signature", message: `${WEBHOOK_SIGNATURE_HEADER} does not match` })
    }
    const body = yield* Effect.try({
      try: () => JSON.parse(Buffer.from(request.rawBody).toString("utf8")) as unknown,
      catch: () => new InboundRefused({ reason: "bad_request", message: "body is not JSON" })
    })
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      return yield* new InboundRefused({ reason: "bad_request", message: "body is not an object" })
    }
    return { body: body as Record<string, unknown>, replayKey: replayKey(providerId, signature) }
  })

const verify = (settings: WebhookSettings) => (request: InboundRequest, secret?: string): Effect.Effect<VerifiedInbound, InboundRefused> =>
  Effect.gen(function*() {
    const { body, replayKey } = yield* verifySignedJson(settings.id, secret ?? settings.inboundSecret, request)
    return { parse: yield* parseWebhookEvent(body as WebhookEvent), replayKey }
  })

/**
 * Outbound: a JSON POST to the binding's URL with `idempotency-key: <delivery key>` (the receiver dedups on it) and,
 * with an outbound secret, the `v1=` signature headers. The URL is org-supplied: it is connected to only when its host
 * resolves to public addresses (checked in the connection's own DNS lookup, `UpstreamClient`), or is allowed by the
 * operator; a refused target is `dead` (never retried) and the binding's error. Redirects are not followed.
 */
export const makeWebhookProvider = (settings: WebhookSettings): ChannelProvider => {
  const secrets = [settings.inboundSecret, settings.outboundSecret].filter((s): s is string => s !== undefined)
  const client = UpstreamClient.make(settings.allowedHosts ?? new Set(), ProviderAddress.WEBHOOK_ALLOWED_HOSTS_VARIABLE)
  const send = (message: OutboundMessage) =>
    Effect.promise(async (): Promise<SendOutcome> => {
      let url: URL
      try {
        url = new URL(message.target)
      } catch {
        return dead("webhook target is not a URL")
      }
      if (url.protocol !== "https:" && url.protocol !== "http:") return dead("webhook target must be http(s)")
      const body = JSON.stringify(message.payload ?? { eventType: message.eventType, text: message.text, idempotencyKey: message.idempotencyKey })
      const timestamp = String(Math.floor(Date.now() / 1000))
      try {
        const response = await client.request(url.href, {
          method: "POST",
          signal: AbortSignal.timeout(settings.timeoutMs),
          headers: {
            "content-type": "application/json",
            [IDEMPOTENCY_KEY_HEADER]: message.idempotencyKey,
            ...(settings.outboundSecret === undefined
              ? {}
              : { [WEBHOOK_TIMESTAMP_HEADER]: timestamp, [WEBHOOK_SIGNATURE_HEADER]: signWebhook(settings.outboundSecret, timestamp, body) })
          },
          body: Buffer.from(body, "utf8")
        })
        // The answer's body is not read: drain it so the keep-alive connection can be reused.
        response.resume()
        const status = response.statusCode ?? 0
        if (status >= 200 && status < 300) return sent()
        if (status >= 300 && status < 400) return dead(`webhook answered a redirect (${status})`, status)
        const retryAfter = response.headers["retry-after"]
        return classifyStatus(status, `webhook answered ${status}`, parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter))
      } catch (error) {
        if (error instanceof ProviderAddress.ProviderAddressRefused) {
          // Names the host and the kind of address only (never the URL's path or query, which may carry a token).
          return { _tag: "Dead", error: scrub(`webhook target refused: ${error.message}`, secrets), authFailed: false, targetRefused: true }
        }
        return failed(scrub(`webhook: ${errorText(error)}`, secrets))
      }
    })
  return {
    id: settings.id,
    kind: "webhook",
    send,
    verifyInbound: verify(settings),
    // Each binding has its own URL: there is no one endpoint to probe, so the provider is usable once configured.
    probe: Effect.succeed(sent()),
    secrets,
    close: Effect.sync(() => client.close())
  }
}
