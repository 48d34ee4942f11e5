import {
  type Account,
  type BrowserSessionView,
  BrowserSessionRefused,
  type Member,
  type MemberRole,
  newAccountId,
  newBrowserSessionId,
  NotAMember
} from "@cowork/domain"
import { COOKIE_VALUE_PATTERN, Identity, newSecret, type PendingLogin, sha256Hex } from "@cowork/services"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { notifyRevocations } from "./Channels.ts"
import { credentialCheck } from "./CredentialCheck.ts"

interface AccountRow {
  id: string
  issuer: string
  subject: string
  email: string | null
  name: string | null
  created_at: Date
}

interface SessionRow {
  id: string
  org_id: string
  account_id: string
  created_at: Date
  last_seen_at: Date
  idle_expires_at: Date
  absolute_expires_at: Date
  revoked_at: Date | null
}

const toAccount = (row: AccountRow): Account => ({
  id: row.id,
  issuer: row.issuer,
  subject: row.subject,
  email: row.email,
  name: row.name,
  createdAt: row.created_at.toISOString()
})

const toSessionView = (row: SessionRow): BrowserSessionView => ({
  id: row.id,
  orgId: row.org_id,
  accountId: row.account_id,
  createdAt: row.created_at.toISOString(),
  lastSeenAt: row.last_seen_at.toISOString(),
  idleExpiresAt: row.idle_expires_at.toISOString(),
  absoluteExpiresAt: row.absolute_expires_at.toISOString(),
  revokedAt: row.revoked_at === null ? null : row.revoked_at.toISOString()
})

const SESSION_COLUMNS = "id, org_id, account_id, created_at, last_seen_at, idle_expires_at, absolute_expires_at, revoked_at"

/** Identity over `cloud_accounts`, `cloud_memberships`, `cloud_browser_sessions`, `cloud_oidc_logins`; times by `now()`. */
const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const upsertAccount = Effect.fn("Identity.upsertAccount")(function*(input: {
    readonly issuer: string
    readonly subject: string
    readonly email: string | null
    readonly name: string | null
  }) {
    const rows = yield* sql.unsafe<AccountRow>(
      `INSERT INTO cloud_accounts (id, issuer, subject, email, name) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (issuer, subject) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name
       RETURNING id, issuer, subject, email, name, created_at`,
      [newAccountId(), input.issuer, input.subject, input.email, input.name]
    )
    return toAccount(rows[0]!)
  }, Effect.orDie)

  const getAccount = Effect.fn("Identity.getAccount")(function*(accountId: string) {
    const rows = yield* sql.unsafe<AccountRow>(
      `SELECT id, issuer, subject, email, name, created_at FROM cloud_accounts WHERE id = $1`,
      [accountId]
    )
    return rows[0] === undefined ? undefined : toAccount(rows[0])
  }, Effect.orDie)

  const defaultOrgId = Effect.map(
    sql.unsafe<{ id: string }>(`SELECT id FROM cloud_orgs ORDER BY created_at, id LIMIT 1`),
    (rows) => rows[0]?.id
  ).pipe(Effect.orDie, Effect.withSpan("Identity.defaultOrgId"))

  const role = Effect.fn("Identity.role")(function*(orgId: string, accountId: string) {
    const rows = yield* sql.unsafe<{ role: MemberRole }>(
      `SELECT role FROM cloud_memberships WHERE org_id = $1 AND account_id = $2`,
      [orgId, accountId]
    )
    return rows[0]?.role
  }, Effect.orDie)

  const memberSelect = `SELECT m.account_id, a.email, a.name, m.role, m.created_at
    FROM cloud_memberships m JOIN cloud_accounts a ON a.id = m.account_id`
  type MemberRow = { account_id: string; email: string | null; name: string | null; role: MemberRole; created_at: Date }
  const toMember = (row: MemberRow): Member => ({
    accountId: row.account_id,
    email: row.email,
    name: row.name,
    role: row.role,
    createdAt: row.created_at.toISOString()
  })

  const setRole = Effect.fn("Identity.setRole")(function*(orgId: string, accountId: string, newRole: MemberRole) {
    yield* sql.unsafe(
      `INSERT INTO cloud_memberships (org_id, account_id, role) VALUES ($1, $2, $3)
       ON CONFLICT (org_id, account_id) DO UPDATE SET role = EXCLUDED.role`,
      [orgId, accountId, newRole]
    )
    const rows = yield* sql.unsafe<MemberRow>(`${memberSelect} WHERE m.org_id = $1 AND m.account_id = $2`, [orgId, accountId])
    return toMember(rows[0]!)
  }, Effect.orDie)

  const invite = Effect.fn("Identity.invite")(function*(orgId: string, email: string, newRole: MemberRole) {
    yield* sql.unsafe(
      `INSERT INTO cloud_invitations (org_id, email, role) VALUES ($1, $2, $3)
       ON CONFLICT (org_id, email) DO UPDATE SET role = EXCLUDED.role, created_at = now()`,
      [orgId, email.toLowerCase(), newRole]
    )
  }, Effect.orDie)

  const acceptInvitation = Effect.fn("Identity.acceptInvitation")(function*(orgId: string, email: string, accountId: string) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      const taken = yield* sql.unsafe<{ role: MemberRole }>(
        `DELETE FROM cloud_invitations WHERE org_id = $1 AND email = $2 RETURNING role`,
        [orgId, email.toLowerCase()]
      )
      const invited = taken[0]?.role
      if (invited === undefined) return undefined
      yield* sql.unsafe(
        `INSERT INTO cloud_memberships (org_id, account_id, role) VALUES ($1, $2, $3)
         ON CONFLICT (org_id, account_id) DO UPDATE SET role = EXCLUDED.role`,
        [orgId, accountId, invited]
      )
      return invited
    }))
  }, Effect.orDie)

  /** Announces the sessions just ended: their event streams close on every web process. */
  const announce = (rows: ReadonlyArray<{ id: string }>) =>
    notifyRevocations(sql, rows.map((row) => ({ kind: "browser_session" as const, id: row.id })))

  const revokeAccountSessions = Effect.fn("Identity.revokeAccountSessions")(function*(orgId: string, accountId: string) {
    const rows = yield* sql.unsafe<{ id: string; live: boolean }>(
      `UPDATE cloud_browser_sessions SET revoked_at = now()
       WHERE org_id = $1 AND account_id = $2 AND revoked_at IS NULL
       RETURNING id, (idle_expires_at > now() AND absolute_expires_at > now()) AS live`,
      [orgId, accountId]
    )
    yield* announce(rows)
    return rows.filter((row) => row.live).length
  }, Effect.orDie)

  const removeMember = Effect.fn("Identity.removeMember")(function*(orgId: string, accountId: string) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      const removed = yield* sql.unsafe<{ account_id: string }>(
        `DELETE FROM cloud_memberships WHERE org_id = $1 AND account_id = $2 RETURNING account_id`,
        [orgId, accountId]
      )
      yield* revokeAccountSessions(orgId, accountId)
      return removed.length > 0
    }))
  }, Effect.orDie)

  const listMembers = Effect.fn("Identity.listMembers")(function*(orgId: string) {
    const rows = yield* sql.unsafe<MemberRow>(`${memberSelect} WHERE m.org_id = $1 ORDER BY m.created_at, m.account_id`, [orgId])
    return rows.map(toMember)
  }, Effect.orDie)

  const openSession = Effect.fn("Identity.openSession")(function*(input: {
    readonly orgId: string
    readonly accountId: string
    readonly lifetimes: { readonly idleMs: number; readonly absoluteMs: number }
    readonly sourceTokenId?: string | undefined
  }) {
    const cookie = newSecret()
    const csrfToken = newSecret()
    // No session in an offboarded org.
    const rows = yield* sql.unsafe<SessionRow>(
      `INSERT INTO cloud_browser_sessions
         (id, secret_hash, org_id, account_id, csrf_token, idle_ms, idle_expires_at, absolute_expires_at, source_token_id)
       SELECT $1, $2, m.org_id, m.account_id, $3, $4::bigint,
         LEAST(now() + $4::float8 * interval '1 millisecond', now() + $5::float8 * interval '1 millisecond'),
         now() + $5::float8 * interval '1 millisecond', $8
       FROM cloud_memberships m JOIN cloud_orgs o ON o.id = m.org_id AND o.offboarded_at IS NULL
       WHERE m.org_id = $6 AND m.account_id = $7
       RETURNING ${SESSION_COLUMNS}`,
      [
        newBrowserSessionId(),
        sha256Hex(cookie),
        csrfToken,
        input.lifetimes.idleMs,
        input.lifetimes.absoluteMs,
        input.orgId,
        input.accountId,
        input.sourceTokenId ?? null
      ]
    ).pipe(Effect.orDie)
    const row = rows[0]
    if (row === undefined) return yield* new NotAMember({ orgId: input.orgId, accountId: input.accountId })
    return { session: toSessionView(row), cookie: Redacted.make(cookie), csrfToken: Redacted.make(csrfToken) }
  })

  const authenticateSession = Effect.fn("Identity.authenticateSession")(function*(cookie: Redacted.Redacted<string>) {
    const value = Redacted.value(cookie)
    if (!COOKIE_VALUE_PATTERN.test(value)) return yield* new BrowserSessionRefused({ reason: "unknown_session" })
    const rows = yield* sql.unsafe<{
      id: string
      org_id: string
      account_id: string
      csrf_token: string
      revoked: boolean
      expired_absolute: boolean
      expired_idle: boolean
      role: MemberRole | null
      email: string | null
      stale: boolean
      source_token_id: string | null
      source_token_ended: boolean
    }>(
      `SELECT s.id, s.org_id, s.account_id, s.csrf_token, s.source_token_id,
         (s.source_token_id IS NOT NULL AND (t.id IS NULL OR t.revoked_at IS NOT NULL
           OR (t.expires_at IS NOT NULL AND t.expires_at <= now()))) AS source_token_ended,
         s.revoked_at IS NOT NULL AS revoked,
         s.absolute_expires_at <= now() AS expired_absolute,
         s.idle_expires_at <= now() AS expired_idle,
         m.role, a.email,
         s.last_seen_at < now() - LEAST(interval '60 seconds', s.idle_ms * interval '1 millisecond' / 10) AS stale
       FROM cloud_browser_sessions s
       JOIN cloud_accounts a ON a.id = s.account_id
       LEFT JOIN cloud_memberships m ON m.org_id = s.org_id AND m.account_id = s.account_id
       LEFT JOIN cloud_api_tokens t ON t.id = s.source_token_id
       WHERE s.secret_hash = $1`,
      [sha256Hex(value)]
    ).pipe(Effect.orDie)
    const row = rows[0]
    if (row === undefined) return yield* new BrowserSessionRefused({ reason: "unknown_session" })
    if (row.revoked) return yield* new BrowserSessionRefused({ reason: "revoked_session" })
    if (row.expired_absolute) return yield* new BrowserSessionRefused({ reason: "expired_absolute" })
    if (row.expired_idle) return yield* new BrowserSessionRefused({ reason: "expired_idle" })
    if (row.source_token_ended) return yield* new BrowserSessionRefused({ reason: "source_token_revoked" })
    if (row.role === null) return yield* new BrowserSessionRefused({ reason: "no_membership" })
    // The idle lifetime moves at most every min(60 s, idle/10): not a write per request.
    if (row.stale) {
      yield* sql.unsafe(
        `UPDATE cloud_browser_sessions SET last_seen_at = now(),
           idle_expires_at = LEAST(now() + idle_ms * interval '1 millisecond', absolute_expires_at)
         WHERE id = $1 AND revoked_at IS NULL`,
        [row.id]
      ).pipe(Effect.orDie)
    }
    return {
      sessionId: row.id,
      orgId: row.org_id,
      accountId: row.account_id,
      email: row.email,
      role: row.role,
      csrfToken: Redacted.make(row.csrf_token),
      sourceTokenId: row.source_token_id
    }
  })

  const endedAmong = Effect.fn("Identity.endedAmong")(function*(sessionIds: ReadonlyArray<string>) {
    if (sessionIds.length === 0) return { ended: [], nextExpiryInMs: null }
    const live = yield* sql.unsafe<{ id: string; expires_in_ms: number }>(
      `SELECT s.id,
         (extract(epoch FROM least(s.idle_expires_at, s.absolute_expires_at, coalesce(t.expires_at, 'infinity')) - now()) * 1000)::float8
           AS expires_in_ms
       FROM cloud_browser_sessions s
       JOIN cloud_memberships m ON m.org_id = s.org_id AND m.account_id = s.account_id
       LEFT JOIN cloud_api_tokens t ON t.id = s.source_token_id
       WHERE s.id = ANY($1::text[]) AND s.revoked_at IS NULL AND s.idle_expires_at > now() AND s.absolute_expires_at > now()
         AND (s.source_token_id IS NULL OR (t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())))`,
      [[...sessionIds]]
    )
    const liveIds = new Set(live.map((row) => row.id))
    return credentialCheck([
      ...live.map((row) => ({ id: row.id, ended: false, expires_in_ms: row.expires_in_ms })),
      ...sessionIds.filter((id) => !liveIds.has(id)).map((id) => ({ id, ended: true, expires_in_ms: null }))
    ])
  }, Effect.orDie)

  const revokeSession = Effect.fn("Identity.revokeSession")(function*(orgId: string, sessionId: string) {
    const rows = yield* sql.unsafe<{ id: string }>(
      `UPDATE cloud_browser_sessions SET revoked_at = now()
       WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL
         AND idle_expires_at > now() AND absolute_expires_at > now()
       RETURNING id`,
      [orgId, sessionId]
    )
    yield* announce(rows)
    return rows.length > 0
  }, Effect.orDie)

  const revokeOrgSessions = Effect.fn("Identity.revokeOrgSessions")(function*(orgId: string) {
    const rows = yield* sql.unsafe<{ id: string; live: boolean }>(
      `UPDATE cloud_browser_sessions SET revoked_at = now() WHERE org_id = $1 AND revoked_at IS NULL
       RETURNING id, (idle_expires_at > now() AND absolute_expires_at > now()) AS live`,
      [orgId]
    )
    yield* announce(rows)
    return rows.filter((row) => row.live).length
  }, Effect.orDie)

  const listSessions = Effect.fn("Identity.listSessions")(function*(orgId: string, accountId?: string) {
    const rows = yield* sql.unsafe<SessionRow>(
      `SELECT ${SESSION_COLUMNS} FROM cloud_browser_sessions
       WHERE org_id = $1 AND ($2::text IS NULL OR account_id = $2) AND revoked_at IS NULL
         AND idle_expires_at > now() AND absolute_expires_at > now()
       ORDER BY created_at, id`,
      [orgId, accountId ?? null]
    )
    return rows.map(toSessionView)
  }, Effect.orDie)

  const beginLogin = Effect.fn("Identity.beginLogin")(function*(login: PendingLogin, ttlMs: number) {
    const loginId = newSecret()
    // Abandoned logins are swept as new ones begin: the table stays as small as the logins in flight.
    yield* sql.unsafe(`DELETE FROM cloud_oidc_logins WHERE expires_at < now() - interval '1 hour'`)
    yield* sql.unsafe(
      `INSERT INTO cloud_oidc_logins (id_hash, state, nonce, code_verifier, return_to, expires_at)
       VALUES ($1, $2, $3, $4, $5, now() + $6::float8 * interval '1 millisecond')`,
      [sha256Hex(loginId), login.state, login.nonce, login.codeVerifier, login.returnTo, ttlMs]
    )
    return Redacted.make(loginId)
  }, Effect.orDie)

  const consumeLogin = Effect.fn("Identity.consumeLogin")(function*(loginId: Redacted.Redacted<string>) {
    const rows = yield* sql.unsafe<{ state: string; nonce: string; code_verifier: string; return_to: string; live: boolean }>(
      `DELETE FROM cloud_oidc_logins WHERE id_hash = $1
       RETURNING state, nonce, code_verifier, return_to, expires_at > now() AS live`,
      [sha256Hex(Redacted.value(loginId))]
    )
    const row = rows[0]
    return row === undefined || !row.live
      ? undefined
      : { state: row.state, nonce: row.nonce, codeVerifier: row.code_verifier, returnTo: row.return_to } satisfies PendingLogin
  }, Effect.orDie)

  return Identity.of({
    upsertAccount,
    getAccount,
    defaultOrgId,
    role,
    setRole,
    removeMember,
    listMembers,
    invite,
    acceptInvitation,
    openSession,
    authenticateSession,
    endedAmong,
    revokeSession,
    revokeAccountSessions,
    revokeOrgSessions,
    listSessions,
    beginLogin,
    consumeLogin
  })
})

export const layer = Layer.effect(Identity, make)
