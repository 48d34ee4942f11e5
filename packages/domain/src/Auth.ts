import { Schema } from "effect"

export const TokenScope = Schema.Literals(["web", "admin", "operator", "worker"])
export type TokenScope = typeof TokenScope.Type

/** Who is calling: an org-bound token holder (or a signed-in person) and what it may do. */
export interface Principal {
  readonly orgId: string
  /** The API token's id; for a browser session, the session's id. */
  readonly tokenId: string
  readonly scopes: ReadonlyArray<TokenScope>
  /** Set when the caller authenticated with a browser session cookie (never together with a bearer token). */
  readonly browserSession?: BrowserSessionPrincipal | undefined
}

export interface BrowserSessionPrincipal {
  readonly sessionId: string
  readonly accountId: string
  readonly email: string | null
  readonly role: "owner" | "admin" | "member"
  /** Echoed by `GET /api/workspace` so the workbench can send it as `X-CSRF-Token` on mutations. */
  readonly csrfToken: string
}

export const API_TOKEN_PREFIX = "occ"

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
