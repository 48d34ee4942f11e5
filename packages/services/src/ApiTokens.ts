import {
  formatApiToken,
  parseApiToken,
  PLATFORM_TOKEN_SCOPES,
  type TokenScope,
  Unauthorized,
  type UnauthorizedReason
} from "@cowork/domain"
import { Redacted } from "effect"
import { newSecret, randomId, sha256Hex, sameDigest } from "./Secrets.ts"

/** The rules every `Tokens` store applies: how a token is minted and how a presented one is judged. */

/** A fresh `occ_<tokenId>_<secret>`, and the only thing stored of it: the secret's sha256. */
export const newApiToken = () => {
  const tokenId = randomId()
  const secret = newSecret()
  return { tokenId, token: Redacted.make(formatApiToken(tokenId, secret)), secretHash: sha256Hex(secret) }
}

/** What a store found for the presented token id. */
export interface StoredToken {
  readonly secretHash: string
  readonly revoked: boolean
  readonly expired: boolean
}

const unauthorized = (reason: UnauthorizedReason) =>
  new Unauthorized({ message: "missing, invalid, expired or revoked token", reason })

/** Splits the presented bearer value, or says why it is refused before any lookup. */
export const parsePresentedToken = (raw: Redacted.Redacted<string>) => {
  const value = Redacted.value(raw)
  if (value === "") return unauthorized("missing_credentials")
  return parseApiToken(value) ?? unauthorized("invalid_token")
}

/**
 * Judges a presented secret against what the store holds (`undefined` when the id is unknown). The digest is
 * compared in constant time even for an unknown id, and expired / revoked are reported only for the real secret:
 * a guesser learns nothing, not even internally.
 */
export const judgeToken = (stored: StoredToken | undefined, presentedSecret: string): Unauthorized | undefined => {
  if (!sameDigest(stored?.secretHash, sha256Hex(presentedSecret)) || stored === undefined) return unauthorized("invalid_token")
  if (stored.revoked) return unauthorized("revoked_token")
  if (stored.expired) return unauthorized("expired_token")
  return undefined
}

export const knownScopes = (scopes: ReadonlyArray<string>): ReadonlyArray<TokenScope> =>
  scopes.filter((scope): scope is TokenScope => scope === "web" || scope === "admin" || scope === "operator" || scope === "worker" ||
    scope === "gateway")

/** A platform token's principal keeps only the scopes a platform token may carry. */
export const platformScopes = (scopes: ReadonlyArray<string>): ReadonlyArray<TokenScope> =>
  knownScopes(scopes).filter((scope) => PLATFORM_TOKEN_SCOPES.includes(scope))

/** The scopes of the first org's owner token. */
export const OWNER_SCOPES: ReadonlyArray<TokenScope> = ["admin", "operator", "web"]

/** `last_used_at` is written at most this often per token. */
export const TOKEN_LAST_USED_RESOLUTION_MS = 60_000
