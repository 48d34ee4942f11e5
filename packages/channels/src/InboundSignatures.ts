import { sha256Hex } from "@cowork/services"
import * as Crypto from "node:crypto"

/**
 * Inbound request authentication for the three schemes the gateway accepts. Every comparison is constant-time;
 * a timestamped scheme refuses anything outside ±5 minutes of the gateway's clock.
 */

const TOLERANCE_SECONDS = 300

/** Generic signed webhooks into the gateway (`POST /webhooks/:providerId`). */
export const WEBHOOK_TIMESTAMP_HEADER = "x-open-cowork-gateway-webhook-timestamp"
export const WEBHOOK_SIGNATURE_HEADER = "x-open-cowork-gateway-webhook-signature"

/** Slack request signing. */
export const SLACK_TIMESTAMP_HEADER = "x-slack-request-timestamp"
export const SLACK_SIGNATURE_HEADER = "x-slack-signature"

/** Telegram's `secret_token` of `setWebhook`, echoed on every update. */
export const TELEGRAM_SECRET_HEADER = "x-telegram-bot-api-secret-token"

/** Outbound webhooks carry the delivery's idempotency key and are signed the same way as inbound ones. */
export const IDEMPOTENCY_KEY_HEADER = "idempotency-key"

const hmacHex = (secret: string, prefix: string, body: Uint8Array): string => {
  const mac = Crypto.createHmac("sha256", secret)
  mac.update(prefix)
  mac.update(body)
  return mac.digest("hex")
}

const constantTimeEqual = (a: string, b: string): boolean => {
  const left = Buffer.from(a, "utf8")
  const right = Buffer.from(b, "utf8")
  // Compare against itself on a length mismatch so the time does not depend on where the strings differ.
  if (left.length !== right.length) {
    Crypto.timingSafeEqual(left, left)
    return false
  }
  return Crypto.timingSafeEqual(left, right)
}

export const isFresh = (timestamp: string, nowMs: number): boolean =>
  /^\d{1,12}$/.test(timestamp) && Math.abs(nowMs / 1000 - Number(timestamp)) <= TOLERANCE_SECONDS

/** `v1=` + hex HMAC-SHA256 of `v1:{timestamp}:{rawBody}`. */
export const signWebhook = (secret: string, timestamp: string, rawBody: Uint8Array | string): string =>
  `v1=${hmacHex(secret, `v1:${timestamp}:`, typeof rawBody === "string" ? Buffer.from(rawBody) : rawBody)}`

export const verifyWebhook = (secret: string, timestamp: string, rawBody: Uint8Array, presented: string): boolean =>
  /^v1=[0-9a-f]{64}$/.test(presented) && constantTimeEqual(signWebhook(secret, timestamp, rawBody), presented)

/** Slack: `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{rawBody}` with the app's signing secret. */
export const signSlack = (signingSecret: string, timestamp: string, rawBody: Uint8Array | string): string =>
  `v0=${hmacHex(signingSecret, `v0:${timestamp}:`, typeof rawBody === "string" ? Buffer.from(rawBody) : rawBody)}`

export const verifySlack = (signingSecret: string, timestamp: string, rawBody: Uint8Array, presented: string): boolean =>
  /^v0=[0-9a-f]{64}$/.test(presented) && constantTimeEqual(signSlack(signingSecret, timestamp, rawBody), presented)

export const verifyTelegram = (secretToken: string, presented: string): boolean => constantTimeEqual(secretToken, presented)

/** The durable replay key of a signed request: a digest of provider and signature (the signature is never stored). */
export const replayKey = (providerId: string, signature: string): string => sha256Hex(`${providerId}\u0000${signature}`)
