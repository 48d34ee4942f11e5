import {
  formatApiToken,
  newOrgId,
  parseApiToken,
  type Principal,
  type TokenScope,
  Unauthorized,
  type UnauthorizedReason
} from "@cowork/domain"
import { type IssuedToken, Tokens } from "@cowork/services"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as Crypto from "node:crypto"

/** Arbitrary constant: serializes concurrent bootstraps so exactly one creates the first org. */
const BOOTSTRAP_LOCK_KEY = 7_316_540_212

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

const randomTokenId = (): string => {
  const bytes = Crypto.randomBytes(20)
  let id = ""
  for (const byte of bytes) id += ALPHANUMERIC[byte % ALPHANUMERIC.length]
  return id
}

const hashSecret = (secret: string): Buffer => Crypto.createHash("sha256").update(secret, "utf8").digest()

const unauthorized = (reason: UnauthorizedReason) =>
  new Unauthorized({ message: "missing, invalid, expired or revoked token", reason })

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
    const tokenId = randomTokenId()
    const secret = Crypto.randomBytes(32).toString("base64url")
    const rows = yield* sql.unsafe<{ expires_at: Date | null }>(
      `INSERT INTO cloud_api_tokens (id, org_id, name, secret_hash, scopes, expires_at)
       VALUES ($1, $2, $3, $4, ARRAY(SELECT jsonb_array_elements_text($5::jsonb)),
         CASE WHEN $6::float8 IS NULL THEN NULL ELSE now() + ($6::float8 * interval '1 millisecond') END)
       RETURNING expires_at`,
      [tokenId, input.orgId, input.name, hashSecret(secret).toString("hex"), JSON.stringify(input.scopes), input.expiresInMs ?? null]
    )
    const expiresAt = rows[0]?.expires_at ?? null
    return {
      tokenId,
      token: Redacted.make(formatApiToken(tokenId, secret)),
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
      const owner = yield* issue({ orgId, name: "owner", scopes: ["admin", "operator", "web"] })
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
    const value = Redacted.value(raw)
    if (value === "") return yield* unauthorized("missing_credentials")
    const parsed = parseApiToken(value)
    if (parsed === undefined) return yield* unauthorized("invalid_token")
    const rows = yield* sql.unsafe<{ org_id: string; secret_hash: string; scopes: Array<string>; revoked: boolean; expired: boolean }>(
      `SELECT org_id, secret_hash, scopes,
         revoked_at IS NOT NULL AS revoked,
         (expires_at IS NOT NULL AND expires_at <= now()) AS expired
       FROM cloud_api_tokens WHERE id = $1`,
      [parsed.tokenId]
    ).pipe(Effect.orDie)
    const row = rows[0]
    const presented = hashSecret(parsed.secret)
    // Compare even when the token id is unknown, so timing does not reveal which ids exist.
    const stored = row === undefined ? Buffer.alloc(presented.length) : Buffer.from(row.secret_hash, "hex")
    const matches = stored.length === presented.length && Crypto.timingSafeEqual(stored, presented)
    // Expired / revoked only for the real secret: a guesser learns nothing, not even internally.
    if (row === undefined || !matches) return yield* unauthorized("invalid_token")
    if (row.revoked) return yield* unauthorized("revoked_token")
    if (row.expired) return yield* unauthorized("expired_token")
    yield* sql.unsafe(
      `UPDATE cloud_api_tokens SET last_used_at = now()
       WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`,
      [parsed.tokenId]
    ).pipe(Effect.orDie)
    return {
      orgId: row.org_id,
      tokenId: parsed.tokenId,
      scopes: row.scopes.filter((scope): scope is TokenScope =>
        scope === "web" || scope === "admin" || scope === "operator" || scope === "worker"
      )
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
