import { Schema } from "effect"

/** `gateway`: a gateway service token, bound to channel bindings (issued by `POST /api/channels/gateway-tokens`). */
export const TokenScope = Schema.Literals(["web", "admin", "operator", "worker", "gateway"])
export type TokenScope = typeof TokenScope.Type

/** The scopes a platform operator token may carry: it operates the platform, it never acts inside an org. */
export const PLATFORM_TOKEN_SCOPES: ReadonlyArray<TokenScope> = ["operator"]

/**
 * A caller bound to one org (an org API token, or a signed-in person): every object it reaches carries that
 * `org_id`; another org's object is a 404.
 */
export interface OrgPrincipal {
  readonly kind: "org"
  readonly orgId: string
  /** The API token's id; for a browser session, the session's id. */
  readonly tokenId: string
  readonly scopes: ReadonlyArray<TokenScope>
  /** Set when the caller authenticated with a browser session cookie (never together with a bearer token). */
  readonly browserSession?: BrowserSessionPrincipal | undefined
}

interface BrowserSessionPrincipal {
  readonly sessionId: string
  readonly accountId: string
  readonly email: string | null
  readonly role: "owner" | "admin" | "member"
  /** Echoed by `GET /api/workspace` so the workbench can send it as `X-CSRF-Token` on mutations. */
  readonly csrfToken: string
  /** The API token the session was signed in with (token login), if any: the session ends with it. */
  readonly sourceTokenId?: string | null | undefined
}

/**
 * A platform operator (a token created only from the CLI, with database access): bound to no org. The only
 * principal that manages `saas_operated` pools, their workers and credentials, and sees cross-org operations.
 * Tenant routes refuse it.
 */
interface PlatformPrincipal {
  readonly kind: "platform"
  readonly tokenId: string
  readonly scopes: ReadonlyArray<TokenScope>
}

/** Who is calling: an org-bound principal or a platform operator. */
export type Principal = OrgPrincipal | PlatformPrincipal

const API_TOKEN_PREFIX = "occ"

export interface ParsedToken {
  readonly tokenId: string
  readonly secret: string
}

const tokenPattern = /^occ_([A-Za-z0-9]{8,64})_([A-Za-z0-9_-]{20,128})$/

/** Splits `occ_<tokenId>_<secret>`; anything else is not one of our tokens. */
export const parseApiToken = (raw: string): ParsedToken | undefined => {
  const match = tokenPattern.exec(raw)
  return match === null ? undefined : { tokenId: match[1]!, secret: match[2]! }
}

export const formatApiToken = (tokenId: string, secret: string): string => `${API_TOKEN_PREFIX}_${tokenId}_${secret}`

/** An API token's metadata, as lists show it: never the secret (only its sha256 is stored). */
export const ApiTokenView = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  scopes: Schema.Array(TokenScope),
  createdAt: Schema.String,
  expiresAt: Schema.NullOr(Schema.String),
  lastUsedAt: Schema.NullOr(Schema.String),
  revokedAt: Schema.NullOr(Schema.String)
})
export type ApiTokenView = typeof ApiTokenView.Type
