import type { Principal, TokenScope, Unauthorized } from "@cowork/domain"
import { Context, Effect, Layer, type Redacted } from "effect"
import { MemoryDatabase } from "./MemoryDatabase.ts"
import { makeTokensMemory } from "./TokensMemory.ts"

export interface IssuedToken {
  readonly tokenId: string
  /** `occ_<tokenId>_<secret>`; shown once, never stored (only a hash of the secret is). */
  readonly token: Redacted.Redacted<string>
  readonly scopes: ReadonlyArray<TokenScope>
  readonly expiresAt: string | null
}

/** Orgs and API tokens. Verification compares secret hashes in constant time. */
export class Tokens extends Context.Service<Tokens, {
  /** Creates the first org and its owner token (scopes admin + operator + web) if no org exists yet. */
  readonly bootstrap: (orgName: string) => Effect.Effect<{ readonly orgId: string; readonly owner: IssuedToken | undefined }>
  readonly createOrg: (name: string) => Effect.Effect<{ readonly orgId: string }>
  readonly issue: (input: {
    readonly orgId: string
    readonly name: string
    readonly scopes: ReadonlyArray<TokenScope>
    readonly expiresInMs?: number | undefined
  }) => Effect.Effect<IssuedToken>
  readonly revoke: (orgId: string, tokenId: string) => Effect.Effect<boolean>
  /**
   * Resolves a bearer token; `Unauthorized` for anything unknown, malformed, expired or revoked, with an internal
   * `reason` (for metrics; callers always get one generic 401).
   */
  readonly authenticate: (raw: Redacted.Redacted<string>) => Effect.Effect<Principal, Unauthorized>
}>()("cowork/Tokens") {
  static readonly layerMemory: Layer.Layer<Tokens, never, MemoryDatabase> = Layer.effect(
    Tokens,
    Effect.map(Effect.service(MemoryDatabase), makeTokensMemory)
  )
}
