import { type ApiTokenView, Conflict, newOrgId, NotFound, PLATFORM_TOKEN_SCOPES, type Principal, type TokenScope, Unauthorized } from "@cowork/domain"
import { Clock, Effect, PubSub } from "effect"
import {
  judgeToken,
  knownScopes,
  newApiToken,
  OWNER_SCOPES,
  parsePresentedToken,
  platformScopes,
  TOKEN_LAST_USED_RESOLUTION_MS
} from "./ApiTokens.ts"
import type { MemoryTables, MemoryToken } from "./MemoryDatabase.ts"
import type { Revocation } from "./ChangeFeed.ts"
import type { IssuedToken, Tokens } from "./Tokens.ts"

const iso = (millis: number | null) => (millis === null ? null : new Date(millis).toISOString())

const viewOf = (row: MemoryToken): ApiTokenView => ({
  id: row.id,
  name: row.name,
  scopes: knownScopes(row.scopes),
  createdAt: iso(row.createdAt)!,
  expiresAt: iso(row.expiresAt),
  lastUsedAt: iso(row.lastUsedAt),
  revokedAt: iso(row.revokedAt)
})

/** Newest first, like the Pg lists. */
const newestFirst = (a: MemoryToken, b: MemoryToken) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1)

export const makeTokensMemory = (db: MemoryTables): Tokens["Service"] => {
  const createOrg = (name: string) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const orgId = newOrgId()
      db.orgs.set(orgId, { id: orgId, name, createdAt: now })
      return { orgId }
    })

  const insert = (input: {
    readonly orgId: string | null
    readonly name: string
    readonly scopes: ReadonlyArray<TokenScope>
    readonly expiresInMs?: number | undefined
  }) =>
    Effect.map(Clock.currentTimeMillis, (now): IssuedToken => {
      const minted = newApiToken()
      const row: MemoryToken = {
        id: minted.tokenId,
        orgId: input.orgId,
        name: input.name,
        createdAt: now,
        secretHash: minted.secretHash,
        scopes: input.scopes,
        expiresAt: input.expiresInMs === undefined ? null : now + input.expiresInMs,
        revokedAt: null,
        lastUsedAt: null
      }
      db.tokens.set(minted.tokenId, row)
      const view = viewOf(row)
      return { tokenId: minted.tokenId, token: minted.token, scopes: input.scopes, expiresAt: view.expiresAt, view }
    })

  const issue: Tokens["Service"]["issue"] = (input) =>
    !db.orgs.has(input.orgId)
      ? Effect.fail(new NotFound({ message: `no such org: ${input.orgId}` }))
      : db.offboardedOrgs.has(input.orgId)
      ? Effect.fail(new Conflict({ message: `org ${input.orgId} is offboarded: it gets no new token` }))
      : insert(input)

  const verify: Tokens["Service"]["verify"] = (raw) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const parsed = parsePresentedToken(raw)
      if (parsed instanceof Unauthorized) return Effect.fail(parsed)
      const row = db.tokens.get(parsed.tokenId)
      const refused = judgeToken(
        row === undefined
          ? undefined
          : { secretHash: row.secretHash, revoked: row.revokedAt !== null, expired: row.expiresAt !== null && row.expiresAt <= now },
        parsed.secret
      )
      if (refused !== undefined || row === undefined) return Effect.fail(refused!)
      if (row.lastUsedAt === null || row.lastUsedAt < now - TOKEN_LAST_USED_RESOLUTION_MS) row.lastUsedAt = now
      const principal: Principal = row.orgId === null
        ? { kind: "platform", tokenId: row.id, scopes: platformScopes(row.scopes) }
        : { kind: "org", orgId: row.orgId, tokenId: row.id, scopes: knownScopes(row.scopes) }
      return Effect.succeed({ principal, expiresAt: iso(row.expiresAt) })
    })

  return {
    bootstrap: (orgName) =>
      Effect.gen(function*() {
        const first = [...db.orgs.values()].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1))[0]
        if (first !== undefined) return { orgId: first.id, owner: undefined }
        const { orgId } = yield* createOrg(orgName)
        const owner = yield* insert({ orgId, name: "owner", scopes: OWNER_SCOPES })
        return { orgId, owner }
      }),
    createOrg,
    listOrgs: Effect.sync(() =>
      [...db.orgs.values()]
        .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1))
        .map((org) => ({ id: org.id, name: org.name, createdAt: iso(org.createdAt)! }))
    ),
    issue,
    issuePlatform: (input) =>
      input.scopes.length === 0 || input.scopes.some((scope) => !PLATFORM_TOKEN_SCOPES.includes(scope))
        ? Effect.die(new Error(`platform tokens carry only ${PLATFORM_TOKEN_SCOPES.join(", ")}`))
        : insert({ ...input, orgId: null }),
    list: (orgId) =>
      Effect.sync(() => [...db.tokens.values()].filter((row) => row.orgId === orgId).sort(newestFirst).map(viewOf)),
    listAll: (options) =>
      Effect.sync(() =>
        [...db.tokens.values()]
          .filter((row) => options.orgId === undefined || row.orgId === options.orgId)
          .sort(newestFirst)
          .map((row) => ({ ...viewOf(row), orgId: row.orgId, kind: row.orgId === null ? "platform" as const : "org" as const }))
      ),
    revoke: (tokenId, options) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const row = db.tokens.get(tokenId)
        if (row === undefined || (options.orgId !== undefined && row.orgId !== options.orgId)) {
          return Effect.fail(new NotFound({ message: `no such token: ${tokenId}` }))
        }
        row.revokedAt ??= now
        PubSub.publishUnsafe<Revocation>(db.revocations, { kind: "token", id: tokenId })
        return Effect.succeed(viewOf(row))
      }),
    invalidAmong: (tokenIds) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const ended: Array<string> = []
        let next: number | null = null
        for (const id of tokenIds) {
          const row = db.tokens.get(id)
          if (row === undefined) continue
          if (row.revokedAt !== null || (row.expiresAt !== null && row.expiresAt <= now)) ended.push(id)
          else if (row.expiresAt !== null) next = Math.min(next ?? row.expiresAt, row.expiresAt)
        }
        return { ended, nextExpiryInMs: next === null ? null : next - now }
      }),
    authenticate: (raw) => Effect.map(verify(raw), (verified) => verified.principal),
    verify
  }
}
