import { type ApiTokenView, Conflict, newOrgId, NotFound, PLATFORM_TOKEN_SCOPES, type Principal, type TokenScope, Unauthorized } from "@cowork/domain"
import {
  type IssuedToken,
  judgeToken,
  knownScopes,
  newApiToken,
  OWNER_SCOPES,
  parsePresentedToken,
  platformScopes,
  TOKEN_LAST_USED_RESOLUTION_MS,
  type TokenListing,
  Tokens
} from "@cowork/services"
import { Effect, Layer, type Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { notifyRevocations } from "./Channels.ts"
import { credentialCheck } from "./CredentialCheck.ts"

/** Arbitrary constant: serializes concurrent bootstraps so exactly one creates the first org. */
const BOOTSTRAP_LOCK_KEY = 7_316_540_212

interface TokenRow {
  id: string
  org_id: string | null
  kind: "org" | "platform"
  name: string
  scopes: Array<string>
  created_at: Date
  expires_at: Date | null
  last_used_at: Date | null
  revoked_at: Date | null
}

const TOKEN_COLUMNS = "id, org_id, kind, name, scopes, created_at, expires_at, last_used_at, revoked_at"

const iso = (date: Date | null) => (date === null ? null : new Date(date).toISOString())

const viewOf = (row: TokenRow): ApiTokenView => ({
  id: row.id,
  name: row.name,
  scopes: knownScopes(row.scopes),
  createdAt: iso(row.created_at)!,
  expiresAt: iso(row.expires_at),
  lastUsedAt: iso(row.last_used_at),
  revokedAt: iso(row.revoked_at)
})

const listingOf = (row: TokenRow): TokenListing => ({ ...viewOf(row), orgId: row.org_id, kind: row.kind })

/** Tokens over `cloud_orgs` / `cloud_api_tokens`: only the sha256 of a token's secret is stored. */
const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const createOrg = Effect.fn("Tokens.createOrg")(function*(name: string) {
    const orgId = newOrgId()
    yield* sql.unsafe(`INSERT INTO cloud_orgs (id, name) VALUES ($1, $2)`, [orgId, name])
    return { orgId }
  }, Effect.orDie)

  const insertToken = (input: {
    readonly orgId: string | null
    readonly name: string
    readonly scopes: ReadonlyArray<TokenScope>
    readonly expiresInMs?: number | undefined
  }) =>
    Effect.gen(function*() {
      const minted = newApiToken()
      const rows = yield* sql.unsafe<TokenRow>(
        `INSERT INTO cloud_api_tokens (id, org_id, kind, name, secret_hash, scopes, expires_at)
         VALUES ($1, $2, $3, $4, $5, ARRAY(SELECT jsonb_array_elements_text($6::jsonb)),
           CASE WHEN $7::float8 IS NULL THEN NULL ELSE now() + ($7::float8 * interval '1 millisecond') END)
         RETURNING ${TOKEN_COLUMNS}`,
        [
          minted.tokenId,
          input.orgId,
          input.orgId === null ? "platform" : "org",
          input.name,
          minted.secretHash,
          JSON.stringify(input.scopes),
          input.expiresInMs ?? null
        ]
      )
      const view = viewOf(rows[0]!)
      return { tokenId: minted.tokenId, token: minted.token, scopes: input.scopes, expiresAt: view.expiresAt, view } satisfies IssuedToken
    })

  const issue = Effect.fn("Tokens.issue")(function*(input: {
    readonly orgId: string
    readonly name: string
    readonly scopes: ReadonlyArray<TokenScope>
    readonly expiresInMs?: number | undefined
  }) {
    const org = yield* sql.unsafe<{ offboarded: boolean }>(
      `SELECT offboarded_at IS NOT NULL AS offboarded FROM cloud_orgs WHERE id = $1`,
      [input.orgId]
    )
    if (org[0] === undefined) return yield* new NotFound({ message: `no such org: ${input.orgId}` })
    if (org[0].offboarded) return yield* new Conflict({ message: `org ${input.orgId} is offboarded: it gets no new token` })
    return yield* insertToken(input)
  }, Effect.catchTag("SqlError", Effect.die))

  const issuePlatform = Effect.fn("Tokens.issuePlatform")(function*(input: {
    readonly name: string
    readonly scopes: ReadonlyArray<TokenScope>
    readonly expiresInMs?: number | undefined
  }) {
    if (input.scopes.length === 0 || input.scopes.some((scope) => !PLATFORM_TOKEN_SCOPES.includes(scope))) {
      return yield* Effect.die(new Error(`platform tokens carry only ${PLATFORM_TOKEN_SCOPES.join(", ")}`))
    }
    return yield* insertToken({ ...input, orgId: null })
  }, Effect.orDie)

  const listOrgs = sql.unsafe<{ id: string; name: string; created_at: Date }>(
    `SELECT id, name, created_at FROM cloud_orgs ORDER BY created_at, id`
  ).pipe(
    Effect.map((rows) => rows.map((row) => ({ id: row.id, name: row.name, createdAt: iso(row.created_at)! }))),
    Effect.orDie,
    Effect.withSpan("Tokens.listOrgs")
  )

  const list = Effect.fn("Tokens.list")(function*(orgId: string) {
    const rows = yield* sql.unsafe<TokenRow>(
      `SELECT ${TOKEN_COLUMNS} FROM cloud_api_tokens WHERE org_id = $1 ORDER BY created_at DESC, id DESC`,
      [orgId]
    )
    return rows.map(viewOf)
  }, Effect.orDie)

  const listAll = Effect.fn("Tokens.listAll")(function*(options: { readonly orgId?: string | undefined }) {
    const rows = yield* sql.unsafe<TokenRow>(
      `SELECT ${TOKEN_COLUMNS} FROM cloud_api_tokens WHERE $1::text IS NULL OR org_id = $1
       ORDER BY created_at DESC, id DESC`,
      [options.orgId ?? null]
    )
    return rows.map(listingOf)
  }, Effect.orDie)

  const bootstrap = Effect.fn("Tokens.bootstrap")(function*(orgName: string) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql.unsafe(`SELECT pg_advisory_xact_lock(${BOOTSTRAP_LOCK_KEY})`)
      const existing = yield* sql.unsafe<{ id: string }>(`SELECT id FROM cloud_orgs ORDER BY created_at, id LIMIT 1`)
      if (existing[0] !== undefined) return { orgId: existing[0].id, owner: undefined }
      const { orgId } = yield* createOrg(orgName)
      const owner = yield* insertToken({ orgId, name: "owner", scopes: OWNER_SCOPES })
      return { orgId, owner }
    }))
  }, Effect.orDie)

  const revoke = Effect.fn("Tokens.revoke")(function*(tokenId: string, options: { readonly orgId?: string | undefined }) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      const rows = yield* sql.unsafe<TokenRow>(
        `UPDATE cloud_api_tokens SET revoked_at = coalesce(revoked_at, now())
         WHERE id = $1 AND ($2::text IS NULL OR org_id = $2) RETURNING ${TOKEN_COLUMNS}`,
        [tokenId, options.orgId ?? null]
      )
      const row = rows[0]
      if (row === undefined) return yield* new NotFound({ message: `no such token: ${tokenId}` })
      // The browser sessions this token signed in end with it.
      const sessions = yield* sql.unsafe<{ id: string }>(
        `UPDATE cloud_browser_sessions SET revoked_at = now() WHERE source_token_id = $1 AND revoked_at IS NULL RETURNING id`,
        [tokenId]
      )
      yield* notifyRevocations(sql, [
        { kind: "token", id: tokenId },
        ...sessions.map((session) => ({ kind: "browser_session" as const, id: session.id }))
      ])
      return viewOf(row)
    }))
  }, Effect.catchTag("SqlError", Effect.die))

  const invalidAmong = Effect.fn("Tokens.invalidAmong")(function*(tokenIds: ReadonlyArray<string>) {
    if (tokenIds.length === 0) return { ended: [], nextExpiryInMs: null }
    const rows = yield* sql.unsafe<{ id: string; ended: boolean; expires_in_ms: number | null }>(
      `SELECT id, (revoked_at IS NOT NULL OR (expires_at IS NOT NULL AND expires_at <= now())) AS ended,
         (extract(epoch FROM expires_at - now()) * 1000)::float8 AS expires_in_ms
       FROM cloud_api_tokens WHERE id = ANY($1::text[])`,
      [[...tokenIds]]
    )
    return credentialCheck(rows)
  }, Effect.orDie)

  const verify = Effect.fnUntraced(function*(raw: Redacted.Redacted<string>) {
    const parsed = parsePresentedToken(raw)
    if (parsed instanceof Unauthorized) return yield* parsed
    const rows = yield* sql.unsafe<{
      org_id: string | null
      secret_hash: string
      scopes: Array<string>
      revoked: boolean
      expired: boolean
      stale: boolean
      expires_at: Date | null
    }>(
      `SELECT org_id, secret_hash, scopes, expires_at,
         revoked_at IS NOT NULL AS revoked,
         (expires_at IS NOT NULL AND expires_at <= now()) AS expired,
         (last_used_at IS NULL OR last_used_at < now() - $2::float8 * interval '1 millisecond') AS stale
       FROM cloud_api_tokens WHERE id = $1`,
      [parsed.tokenId, TOKEN_LAST_USED_RESOLUTION_MS]
    ).pipe(Effect.orDie)
    const row = rows[0]
    const refused = judgeToken(
      row === undefined ? undefined : { secretHash: row.secret_hash, revoked: row.revoked, expired: row.expired },
      parsed.secret
    )
    if (refused !== undefined || row === undefined) return yield* (refused ?? new Unauthorized({ message: "invalid token" }))
    // last_used_at moves at most once per resolution: no write statement on the request path otherwise.
    if (row.stale) {
      yield* sql.unsafe(
        `UPDATE cloud_api_tokens SET last_used_at = now()
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - $2::float8 * interval '1 millisecond')`,
        [parsed.tokenId, TOKEN_LAST_USED_RESOLUTION_MS]
      ).pipe(Effect.orDie)
    }
    const principal: Principal = row.org_id === null
      ? { kind: "platform", tokenId: parsed.tokenId, scopes: platformScopes(row.scopes) }
      : { kind: "org", orgId: row.org_id, tokenId: parsed.tokenId, scopes: knownScopes(row.scopes) }
    return { principal, expiresAt: iso(row.expires_at) }
  }, Effect.withSpan("Tokens.verify"))

  const authenticate = (raw: Redacted.Redacted<string>) => Effect.map(verify(raw), (verified) => verified.principal)


  return Tokens.of({ bootstrap, createOrg, listOrgs, issue, issuePlatform, list, listAll, revoke, invalidAmong, authenticate, verify })
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
