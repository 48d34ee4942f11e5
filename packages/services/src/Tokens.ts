import type { ApiTokenView, Conflict, NotFound, Principal, TokenScope, Unauthorized } from "@cowork/domain"
import { Context, Effect, Layer, type Redacted } from "effect"
import { MemoryDatabase } from "./MemoryDatabase.ts"
import { makeTokensMemory } from "./TokensMemory.ts"

export interface IssuedToken {
  readonly tokenId: string
  /** `occ_<tokenId>_<secret>`; shown once, never stored (only a hash of the secret is). */
  readonly token: Redacted.Redacted<string>
  readonly scopes: ReadonlyArray<TokenScope>
  readonly expiresAt: string | null
  /** The token's metadata as lists show it. */
  readonly view: ApiTokenView
}

export interface OrgView {
  readonly id: string
  readonly name: string
  readonly createdAt: string
}

/** A token as the CLI lists it: which org it belongs to (`null` for a platform operator token). */
export interface TokenListing extends ApiTokenView {
  readonly orgId: string | null
  readonly kind: "org" | "platform"
}

/** A verified token: who it is, and until when it stays valid unless revoked (`null`: no expiry). */
export interface VerifiedToken {
  readonly principal: Principal
  readonly expiresAt: string | null
}

/** Which of a set of credentials ended, and when the first live one expires (ms from now; `null`: none expires). */
export interface CredentialCheck {
  readonly ended: ReadonlyArray<string>
  readonly nextExpiryInMs: number | null
}

/** Orgs and API tokens. Verification compares secret hashes in constant time. */
export class Tokens extends Context.Service<Tokens, {
  /** Creates the first org and its owner token (scopes admin + operator + web) if no org exists yet. */
  readonly bootstrap: (orgName: string) => Effect.Effect<{ readonly orgId: string; readonly owner: IssuedToken | undefined }>
  readonly createOrg: (name: string) => Effect.Effect<{ readonly orgId: string }>
  readonly listOrgs: Effect.Effect<ReadonlyArray<OrgView>>
  /** Issues an org token; `NotFound` when the org does not exist, `Conflict` when it is offboarded. */
  readonly issue: (input: {
    readonly orgId: string
    readonly name: string
    readonly scopes: ReadonlyArray<TokenScope>
    readonly expiresInMs?: number | undefined
  }) => Effect.Effect<IssuedToken, NotFound | Conflict>
  /**
   * Issues a platform operator token (bound to no org; scopes limited to `PLATFORM_TOKEN_SCOPES`). Only the CLI,
   * with database access, calls this: no route creates one.
   */
  readonly issuePlatform: (input: {
    readonly name: string
    readonly scopes: ReadonlyArray<TokenScope>
    readonly expiresInMs?: number | undefined
  }) => Effect.Effect<IssuedToken>
  /** An org's tokens, newest first (revoked ones included, with `revokedAt`); never a secret. */
  readonly list: (orgId: string) => Effect.Effect<ReadonlyArray<ApiTokenView>>
  /** Every token (the CLI's view), newest first; `orgId` narrows it to one org. */
  readonly listAll: (options: { readonly orgId?: string | undefined }) => Effect.Effect<ReadonlyArray<TokenListing>>
  /**
   * Revokes a token (idempotent: an already revoked token is returned as it is). With `orgId`, only that org's
   * token: another org's or a platform token is `NotFound`. The browser sessions it signed in (token login) end with
   * it, and the revocation is announced on `ChangeFeed.revocations` (the token, and each session it ended).
   */
  readonly revoke: (tokenId: string, options: { readonly orgId?: string | undefined }) => Effect.Effect<ApiTokenView, NotFound>
  /**
   * Of `tokenIds`, those revoked or expired now (database clock): their open streams end; and how long until the
   * first of the others expires, so the caller checks again then instead of polling.
   */
  readonly invalidAmong: (tokenIds: ReadonlyArray<string>) => Effect.Effect<CredentialCheck>
  /**
   * Resolves a bearer token; `Unauthorized` for anything unknown, malformed, expired or revoked, with an internal
   * `reason` (for metrics; callers always get one generic 401).
   */
  readonly authenticate: (raw: Redacted.Redacted<string>) => Effect.Effect<Principal, Unauthorized>
  /** `authenticate`, with the token's expiry (what a cache of verified tokens needs). */
  readonly verify: (raw: Redacted.Redacted<string>) => Effect.Effect<VerifiedToken, Unauthorized>
}>()("cowork/Tokens") {
  static readonly layerMemory: Layer.Layer<Tokens, never, MemoryDatabase> = Layer.effect(
    Tokens,
    Effect.map(Effect.service(MemoryDatabase), makeTokensMemory)
  )
}
