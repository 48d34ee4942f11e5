import * as Crypto from "node:crypto"
import { sha256Hex } from "./Secrets.ts"

/**
 * Workflow webhook signatures (`POST /webhooks/workflows/:id`): `x-open-cowork-webhook-signature` = `v1=` + hex HMAC-SHA256 of
 * `v1:{timestamp}:{rawBody}` with the trigger's secret, `x-open-cowork-webhook-timestamp` in unix seconds.
 */

export const TIMESTAMP_HEADER = "x-open-cowork-webhook-timestamp"
export const SIGNATURE_HEADER = "x-open-cowork-webhook-signature"
/** A delivery is accepted within ±5 minutes of its timestamp. */
const SIGNATURE_TOLERANCE_SECONDS = 300

const SIGNATURE_PATTERN = /^v1=[0-9a-f]{64}$/

export const sign = (secret: string, timestamp: string, rawBody: Uint8Array | string): string => {
  const mac = Crypto.createHmac("sha256", secret)
  mac.update(`v1:${timestamp}:`)
  mac.update(rawBody)
  return `v1=${mac.digest("hex")}`
}

/** Constant-time comparison of a presented signature with the expected one (malformed ones fail too). */
export const verify = (secret: string, timestamp: string, rawBody: Uint8Array, presented: string): boolean => {
  if (!SIGNATURE_PATTERN.test(presented)) return false
  const expected = Buffer.from(sign(secret, timestamp, rawBody), "utf8")
  const given = Buffer.from(presented, "utf8")
  return expected.length === given.length && Crypto.timingSafeEqual(expected, given)
}

/** True when `timestamp` (unix seconds) is within the tolerance of `nowMs`. */
export const isFresh = (timestamp: string, nowMs: number): boolean => {
  if (!/^\d{1,12}$/.test(timestamp)) return false
  return Math.abs(nowMs / 1000 - Number(timestamp)) <= SIGNATURE_TOLERANCE_SECONDS
}

/** The durable replay key of a delivery: a digest of its workflow and signature (the signature itself is not stored). */
export const deliveryKey = (workflowId: string, signature: string): string =>
  sha256Hex(`${workflowId}\u0000${signature}`)

/** A new signing secret: 32 random bytes, `whsec_` + base64url. */
export const newSecret = (): string => `whsec_${Crypto.randomBytes(32).toString("base64url")}`
