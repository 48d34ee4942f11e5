import { Schema } from "effect"
import { fromBase64Url, toBase64Url } from "./Base64Url.ts"

/**
 * Who did what to what: sign-ins and sign-outs, member and role changes, session revocations, token changes, admin
 * actions. `details` holds small, non-secret facts (a role, a count, a method); never a token, key or cookie.
 */
export const AuditEvent = Schema.Struct({
  id: Schema.String,
  orgId: Schema.String,
  at: Schema.String,
  /** `account:<id>`, `token:<id>`, `browser:<session id>`, `system`. */
  actor: Schema.String,
  /** Dotted verb, e.g. `auth.sign_in`, `member.role_changed`. */
  action: Schema.String,
  target: Schema.NullOr(Schema.String),
  requestId: Schema.NullOr(Schema.String),
  details: Schema.Record(Schema.String, Schema.Unknown)
})
export type AuditEvent = typeof AuditEvent.Type

export type AuditDetails = AuditEvent["details"]

export const AuditPage = Schema.Struct({
  events: Schema.Array(AuditEvent),
  nextCursor: Schema.NullOr(Schema.String)
})
export type AuditPage = typeof AuditPage.Type

/** Keyset cursor over the audit log: the last event's id (a decimal sequence), base64url. */
export const encodeAuditCursor = (id: string): string => toBase64Url(id)
export const decodeAuditCursor = (cursor: string): string | undefined => {
  const decoded = fromBase64Url(cursor)
  return decoded !== undefined && /^[0-9]{1,19}$/.test(decoded) ? decoded : undefined
}
