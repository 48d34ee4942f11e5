import { newOrgId, Unauthorized } from "@cowork/domain"
import { Clock, Effect } from "effect"
import { judgeToken, knownScopes, newApiToken, OWNER_SCOPES, parsePresentedToken, TOKEN_LAST_USED_RESOLUTION_MS } from "./ApiTokens.ts"
import type { MemoryTables } from "./MemoryDatabase.ts"
import type { IssuedToken, Tokens } from "./Tokens.ts"

export const makeTokensMemory = (db: MemoryTables): Tokens["Service"] => {
  const createOrg = (name: string) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const orgId = newOrgId()
      db.orgs.set(orgId, { id: orgId, name, createdAt: now })
      return { orgId }
    })

  const issue: Tokens["Service"]["issue"] = (input) =>
    Effect.map(Clock.currentTimeMillis, (now): IssuedToken => {
      const minted = newApiToken()
      const expiresAt = input.expiresInMs === undefined ? null : now + input.expiresInMs
      db.tokens.set(minted.tokenId, {
        id: minted.tokenId,
        orgId: input.orgId,
        name: input.name,
        secretHash: minted.secretHash,
        scopes: input.scopes,
        expiresAt,
        revokedAt: null,
        lastUsedAt: null
      })
      return {
        tokenId: minted.tokenId,
        token: minted.token,
        scopes: input.scopes,
        expiresAt: expiresAt === null ? null : new Date(expiresAt).toISOString()
      }
    })

  return {
    bootstrap: (orgName) =>
      Effect.gen(function*() {
        const first = [...db.orgs.values()].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1))[0]
        if (first !== undefined) return { orgId: first.id, owner: undefined }
        const { orgId } = yield* createOrg(orgName)
        const owner = yield* issue({ orgId, name: "owner", scopes: OWNER_SCOPES })
        return { orgId, owner }
      }),
    createOrg,
    issue,
    revoke: (orgId, tokenId) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const token = db.tokens.get(tokenId)
        if (token === undefined || token.orgId !== orgId || token.revokedAt !== null) return false
        token.revokedAt = now
        return true
      }),
    authenticate: (raw) =>
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
        return Effect.succeed({ orgId: row.orgId, tokenId: row.id, scopes: knownScopes(row.scopes) })
      })
  }
}
