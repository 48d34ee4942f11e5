import { newOrgId, type Principal, type TokenScope, Unauthorized } from "@cowork/domain"
import {
  type IssuedToken,
  judgeToken,
  knownScopes,
  newApiToken,
  OWNER_SCOPES,
  parsePresentedToken,
  TOKEN_LAST_USED_RESOLUTION_MS,
  Tokens
} from "@cowork/services"
import { Effect, Layer, type Redacted } from "effect"
import { SqlClient } from "effect/sql"

/** Arbitrary constant: serializes concurrent bootstraps so exactly one creates the first org. */
const BOOTSTRAP_LOCK_KEY = 7_316_540_212

/** Tokens over `cloud_orgs` / `cloud_api_tokens`: only the sha256 of a token's secret is stored. */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const createOrg = Effect.fn("Tokens.createOrg")(function*(name: string) {
    const orgId = newOrgId()
    yield* sql.unsafe(`INSERT INTO cloud_orgs (id, name) VALUES ($1, $2)`, [orgId, name])
    return { orgId }
  }, Effect.orDie)

  const issue = Effect.fn("Tokens.issue")(function*(input: {
    readonly orgId: string
    readonly name: string
    readonly scopes: ReadonlyArray<TokenScope>
    readonly expiresInMs?: number | undefined
  }) {
    const minted = newApiToken()
    const rows = yield* sql.unsafe<{ expires_at: Date | null }>(
      `INSERT INTO cloud_api_tokens (id, org_id, name, secret_hash, scopes, expires_at)
       VALUES ($1, $2, $3, $4, ARRAY(SELECT jsonb_array_elements_text($5::jsonb)),
         CASE WHEN $6::float8 IS NULL THEN NULL ELSE now() + ($6::float8 * interval '1 millisecond') END)
       RETURNING expires_at`,
      [minted.tokenId, input.orgId, input.name, minted.secretHash, JSON.stringify(input.scopes), input.expiresInMs ?? null]
    )
    const expiresAt = rows[0]?.expires_at ?? null
    return {
      tokenId: minted.tokenId,
      token: minted.token,
      scopes: input.scopes,
      expiresAt: expiresAt === null ? null : expiresAt.toISOString()
    } satisfies IssuedToken
  }, Effect.orDie)

  const bootstrap = Effect.fn("Tokens.bootstrap")(function*(orgName: string) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql.unsafe(`SELECT pg_advisory_xact_lock(${BOOTSTRAP_LOCK_KEY})`)
      const existing = yield* sql.unsafe<{ id: string }>(`SELECT id FROM cloud_orgs ORDER BY created_at, id LIMIT 1`)
      if (existing[0] !== undefined) return { orgId: existing[0].id, owner: undefined }
      const { orgId } = yield* createOrg(orgName)
      const owner = yield* issue({ orgId, name: "owner", scopes: OWNER_SCOPES })
      return { orgId, owner }
    }))
  }, Effect.orDie)

  const revoke = Effect.fn("Tokens.revoke")(function*(orgId: string, tokenId: string) {
    const rows = yield* sql.unsafe<{ id: string }>(
      `UPDATE cloud_api_tokens SET revoked_at = now() WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL RETURNING id`,
      [tokenId, orgId]
    )
    return rows.length > 0
  }, Effect.orDie)

  const authenticate = Effect.fn("Tokens.authenticate")(function*(raw: Redacted.Redacted<string>) {
    const parsed = parsePresentedToken(raw)
    if (parsed instanceof Unauthorized) return yield* parsed
    const rows = yield* sql.unsafe<{ org_id: string; secret_hash: string; scopes: Array<string>; revoked: boolean; expired: boolean }>(
      `SELECT org_id, secret_hash, scopes,
         revoked_at IS NOT NULL AS revoked,
         (expires_at IS NOT NULL AND expires_at <= now()) AS expired
       FROM cloud_api_tokens WHERE id = $1`,
      [parsed.tokenId]
    ).pipe(Effect.orDie)
    const row = rows[0]
    const refused = judgeToken(
      row === undefined ? undefined : { secretHash: row.secret_hash, revoked: row.revoked, expired: row.expired },
      parsed.secret
    )
    if (refused !== undefined || row === undefined) return yield* (refused ?? new Unauthorized({ message: "invalid token" }))
    yield* sql.unsafe(
      `UPDATE cloud_api_tokens SET last_used_at = now()
       WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - $2::float8 * interval '1 millisecond')`,
      [parsed.tokenId, TOKEN_LAST_USED_RESOLUTION_MS]
    ).pipe(Effect.orDie)
    return {
      orgId: row.org_id,
      tokenId: parsed.tokenId,
      scopes: knownScopes(row.scopes)
    } satisfies Principal
  })

  return Tokens.of({ bootstrap, createOrg, issue, revoke, authenticate })
})

export const layer = Layer.effect(Tokens, make)

/**
 * The `/readyz` `auth_config` check: the tokens table answers and bootstrap has issued at least one live token, so
 * some caller can authenticate.
 */
export const authConfigured = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql.unsafe<{ ok: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM cloud_api_tokens WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())) AS ok`
  )
  return rows[0]?.ok === true
})
