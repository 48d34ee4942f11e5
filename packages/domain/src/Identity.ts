import { Schema } from "effect"
import type { TokenScope } from "./Auth.ts"
import { makeId } from "./Ids.ts"

/** People and their browser sessions: accounts (from an OIDC subject), org memberships with roles, sessions. */

export const MemberRole = Schema.Literals(["owner", "admin", "member"])
export type MemberRole = typeof MemberRole.Type

/** Scopes derive from the role; a browser session never carries `operator` (operator routes refuse cookies). */
export const scopesForRole = (role: MemberRole): ReadonlyArray<TokenScope> =>
  role === "member" ? ["web"] : ["web", "admin"]

export const Account = Schema.Struct({
  id: Schema.String,
  issuer: Schema.String,
  subject: Schema.String,
  email: Schema.NullOr(Schema.String),
  name: Schema.NullOr(Schema.String),
  createdAt: Schema.String
})
export type Account = typeof Account.Type

export const Member = Schema.Struct({
  accountId: Schema.String,
  email: Schema.NullOr(Schema.String),
  name: Schema.NullOr(Schema.String),
  role: MemberRole,
  createdAt: Schema.String
})
export type Member = typeof Member.Type

/** A browser session as admins see it: never the cookie value, never the CSRF token. */
export const BrowserSessionView = Schema.Struct({
  id: Schema.String,
  orgId: Schema.String,
  accountId: Schema.String,
  createdAt: Schema.String,
  lastSeenAt: Schema.String,
  idleExpiresAt: Schema.String,
  absoluteExpiresAt: Schema.String,
  revokedAt: Schema.NullOr(Schema.String)
})
export type BrowserSessionView = typeof BrowserSessionView.Type

/** Why a browser session cookie was refused (counted, never shown). */
const BrowserSessionRefusal = Schema.Literals([
  "unknown_session",
  "expired_idle",
  "expired_absolute",
  "revoked_session",
  "no_membership",
  /** Signed in with an API token (token login) that has since been revoked or has expired. */
  "source_token_revoked"
])
type BrowserSessionRefusal = typeof BrowserSessionRefusal.Type

export const newAccountId = (): string => makeId("acc")
export const newBrowserSessionId = (): string => makeId("bs")

/** A browser session cookie that does not (or no longer) authenticates; the reason is for metrics only. */
export class BrowserSessionRefused extends Schema.TaggedError<BrowserSessionRefused>()("BrowserSessionRefused", {
  reason: BrowserSessionRefusal
}, { httpApiStatus: 401 }) {}

/** The account is not a member of the org (no role to sign in with). */
export class NotAMember extends Schema.TaggedError<NotAMember>()("NotAMember", {
  orgId: Schema.String,
  accountId: Schema.String
}, { httpApiStatus: 403 }) {}
