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
import { Clock, Context, Effect, Layer, Option, PubSub, Redacted } from "effect"
import type { Revocation } from "./ChangeFeed.ts"
import type { CredentialCheck } from "./Tokens.ts"
import { MemoryDatabase, type MemoryTables } from "./MemoryDatabase.ts"
import { newSecret, sha256Hex } from "./Secrets.ts"

export interface SessionLifetimes {
  /** A session unused for this long ends. */
  readonly idleMs: number
  /** A session ends this long after sign-in, however active. */
  readonly absoluteMs: number
}

export interface OpenedBrowserSession {
  readonly session: BrowserSessionView
  /** The cookie value: a random id, shown once; only its sha256 is stored. */
  readonly cookie: Redacted.Redacted<string>
  readonly csrfToken: Redacted.Redacted<string>
}

export interface AuthenticatedBrowserSession {
  readonly sessionId: string
  readonly orgId: string
  readonly accountId: string
  readonly email: string | null
  /** Read from the membership on every request: a demotion or removal applies at once. */
  readonly role: MemberRole
  readonly csrfToken: Redacted.Redacted<string>
  /** The API token this session was signed in with (token login): the session ends with it. */
  readonly sourceTokenId: string | null
}

export interface PendingLogin {
  readonly state: string
  readonly nonce: string
  readonly codeVerifier: string
  readonly returnTo: string
}

/**
 * Accounts (an OIDC issuer + subject), org memberships with roles, revocable browser sessions with idle and
 * absolute lifetimes, and the short-lived, one-time OIDC login transactions (state, nonce, PKCE verifier).
 */
export class Identity extends Context.Service<Identity, {
  /** Finds or creates the account of an issuer's subject, refreshing its email and name. */
  readonly upsertAccount: (input: {
    readonly issuer: string
    readonly subject: string
    readonly email: string | null
    readonly name: string | null
  }) => Effect.Effect<Account>
  readonly getAccount: (accountId: string) => Effect.Effect<Account | undefined>
  /** The org OIDC sign-ins join when none is configured: the oldest one. */
  readonly defaultOrgId: Effect.Effect<string | undefined>
  readonly role: (orgId: string, accountId: string) => Effect.Effect<MemberRole | undefined>
  /** Adds the account to the org with the role, or changes its role. */
  readonly setRole: (orgId: string, accountId: string, role: MemberRole) => Effect.Effect<Member>
  /** Removes the membership and ends the account's browser sessions in that org, at once. */
  readonly removeMember: (orgId: string, accountId: string) => Effect.Effect<boolean>
  readonly listMembers: (orgId: string) => Effect.Effect<ReadonlyArray<Member>>
  /** Invites an email (lower-cased) to the org with a role; re-inviting replaces the role. */
  readonly invite: (orgId: string, email: string, role: MemberRole) => Effect.Effect<void>
  /**
   * At sign-in with a verified email: turns a pending invitation into a membership (once) and returns its role, or
   * `undefined` when there is none.
   */
  readonly acceptInvitation: (orgId: string, email: string, accountId: string) => Effect.Effect<MemberRole | undefined>
  /**
   * Opens a browser session for a member; `NotAMember` without a membership or in an offboarded org. With
   * `sourceTokenId` (token login) the session ends when that token is revoked or expires.
   */
  readonly openSession: (input: {
    readonly orgId: string
    readonly accountId: string
    readonly lifetimes: SessionLifetimes
    readonly sourceTokenId?: string | undefined
  }) => Effect.Effect<OpenedBrowserSession, NotAMember>
  /** Resolves a cookie value; extends the idle lifetime (never past the absolute one). */
  readonly authenticateSession: (cookie: Redacted.Redacted<string>) => Effect.Effect<AuthenticatedBrowserSession, BrowserSessionRefused>
  /**
   * Of `sessionIds`, those ended now (revoked, expired, their member removed or their source token revoked), and how
   * long until the first of the others expires (idle or absolute lifetime, or its source token's expiry).
   */
  readonly endedAmong: (sessionIds: ReadonlyArray<string>) => Effect.Effect<CredentialCheck>
  /** Every revocation below is announced on `ChangeFeed.revocations` (`browser_session` per ended session). */
  readonly revokeSession: (orgId: string, sessionId: string) => Effect.Effect<boolean>
  /** Log out everywhere / an admin ends a member's sessions: returns how many were live. */
  readonly revokeAccountSessions: (orgId: string, accountId: string) => Effect.Effect<number>
  readonly revokeOrgSessions: (orgId: string) => Effect.Effect<number>
  /** Live (unrevoked, unexpired) sessions of the org, or of one account in it. */
  readonly listSessions: (orgId: string, accountId?: string) => Effect.Effect<ReadonlyArray<BrowserSessionView>>
  /** Stores a login transaction under a random id (the login cookie), valid for `ttlMs`. */
  readonly beginLogin: (login: PendingLogin, ttlMs: number) => Effect.Effect<Redacted.Redacted<string>>
  /** Takes a login transaction once: a second take, or an expired one, is `undefined`. */
  readonly consumeLogin: (loginId: Redacted.Redacted<string>) => Effect.Effect<PendingLogin | undefined>
}>()("cowork/Identity") {
  /**
   * In memory. Over a `MemoryDatabase` when one is provided: token-login sessions then follow their token, offboarded
   * orgs open no session, and revocations are announced on its `revocations`.
   */
  static readonly layerMemory = Layer.effect(
    Identity,
    Effect.map(Effect.serviceOption(MemoryDatabase), (db) => makeMemoryIdentity(Option.getOrUndefined(db)))
  )
}


/** A cookie value's stored form; malformed values never reach the store. */
export const COOKIE_VALUE_PATTERN = /^[A-Za-z0-9_-]{43}$/

interface MemorySession {
  readonly id: string
  readonly orgId: string
  readonly accountId: string
  readonly csrfToken: string
  readonly createdAt: number
  lastSeenAt: number
  idleExpiresAt: number
  readonly absoluteExpiresAt: number
  readonly idleMs: number
  readonly sourceTokenId: string | null
  revokedAt: number | null
}

const iso = (ms: number) => new Date(ms).toISOString()

const viewOf = (session: MemorySession): BrowserSessionView => ({
  id: session.id,
  orgId: session.orgId,
  accountId: session.accountId,
  createdAt: iso(session.createdAt),
  lastSeenAt: iso(session.lastSeenAt),
  idleExpiresAt: iso(session.idleExpiresAt),
  absoluteExpiresAt: iso(session.absoluteExpiresAt),
  revokedAt: session.revokedAt === null ? null : iso(session.revokedAt)
})

/** The in-memory Identity (time from the Effect `Clock`, so tests move it with `TestClock`). */
const makeMemoryIdentity = (db?: MemoryTables): Identity["Service"] => {
  const accounts = new Map<string, Account>()
  const memberships = new Map<string, { role: MemberRole; createdAt: number }>()
  const sessions = new Map<string, MemorySession>() // by sha256(cookie)
  const logins = new Map<string, { login: PendingLogin; expiresAt: number }>()
  const invitations = new Map<string, MemberRole>()
  const memberKey = (orgId: string, accountId: string) => `${orgId}\u0000${accountId}`

  const endSessions = (now: number, match: (session: MemorySession) => boolean) => {
    let ended = 0
    for (const session of sessions.values()) {
      if (session.revokedAt === null && match(session)) {
        if (session.idleExpiresAt > now && session.absoluteExpiresAt > now) ended++
        session.revokedAt = now
        if (db !== undefined) PubSub.publishUnsafe<Revocation>(db.revocations, { kind: "browser_session", id: session.id })
      }
    }
    return ended
  }

  /** The token a token-login session came from is revoked or expired (known only over a `MemoryDatabase`). */
  const sourceTokenEnded = (session: MemorySession, now: number) => {
    if (session.sourceTokenId === null || db === undefined) return false
    const token = db.tokens.get(session.sourceTokenId)
    return token === undefined || token.revokedAt !== null || (token.expiresAt !== null && token.expiresAt <= now)
  }

  const live = (session: MemorySession, now: number) =>
    session.revokedAt === null && session.idleExpiresAt > now && session.absoluteExpiresAt > now && !sourceTokenEnded(session, now)

  return Identity.of({
    upsertAccount: (input) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        for (const [id, account] of accounts) {
          if (account.issuer === input.issuer && account.subject === input.subject) {
            const updated = { ...account, email: input.email, name: input.name }
            accounts.set(id, updated)
            return updated
          }
        }
        const account: Account = { id: newAccountId(), ...input, createdAt: iso(now) }
        accounts.set(account.id, account)
        return account
      }),
    getAccount: (accountId) => Effect.sync(() => accounts.get(accountId)),
    // The memory store knows orgs only through their members: the first org anyone joined.
    defaultOrgId: Effect.sync(() => {
      const first = memberships.keys().next()
      return first.done === true ? undefined : first.value.split("\u0000")[0]
    }),
    role: (orgId, accountId) => Effect.sync(() => memberships.get(memberKey(orgId, accountId))?.role),
    setRole: (orgId, accountId, role) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const key = memberKey(orgId, accountId)
        const createdAt = memberships.get(key)?.createdAt ?? now
        memberships.set(key, { role, createdAt })
        const account = accounts.get(accountId)
        return { accountId, email: account?.email ?? null, name: account?.name ?? null, role, createdAt: iso(createdAt) }
      }),
    removeMember: (orgId, accountId) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const removed = memberships.delete(memberKey(orgId, accountId))
        endSessions(now, (session) => session.orgId === orgId && session.accountId === accountId)
        return removed
      }),
    listMembers: (orgId) =>
      Effect.sync(() => {
        const members: Array<Member> = []
        for (const [key, membership] of memberships) {
          const [memberOrg, accountId] = key.split("\u0000") as [string, string]
          if (memberOrg !== orgId) continue
          const account = accounts.get(accountId)
          members.push({
            accountId,
            email: account?.email ?? null,
            name: account?.name ?? null,
            role: membership.role,
            createdAt: iso(membership.createdAt)
          })
        }
        return members.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.accountId.localeCompare(b.accountId))
      }),
    invite: (orgId, email, role) => Effect.sync(() => void invitations.set(memberKey(orgId, email.toLowerCase()), role)),
    acceptInvitation: (orgId, email, accountId) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const key = memberKey(orgId, email.toLowerCase())
        const role = invitations.get(key)
        if (role === undefined) return undefined
        invitations.delete(key)
        memberships.set(memberKey(orgId, accountId), { role, createdAt: memberships.get(memberKey(orgId, accountId))?.createdAt ?? now })
        return role
      }),
    openSession: ({ orgId, accountId, lifetimes, sourceTokenId }) =>
      Effect.gen(function*() {
        if (!memberships.has(memberKey(orgId, accountId)) || db?.offboardedOrgs.has(orgId) === true) {
          return yield* new NotAMember({ orgId, accountId })
        }
        const now = yield* Clock.currentTimeMillis
        const cookie = newSecret()
        const absoluteExpiresAt = now + lifetimes.absoluteMs
        const session: MemorySession = {
          id: newBrowserSessionId(),
          orgId,
          accountId,
          csrfToken: newSecret(),
          createdAt: now,
          lastSeenAt: now,
          idleExpiresAt: Math.min(now + lifetimes.idleMs, absoluteExpiresAt),
          absoluteExpiresAt,
          idleMs: lifetimes.idleMs,
          sourceTokenId: sourceTokenId ?? null,
          revokedAt: null
        }
        sessions.set(sha256Hex(cookie), session)
        return { session: viewOf(session), cookie: Redacted.make(cookie), csrfToken: Redacted.make(session.csrfToken) }
      }),
    authenticateSession: (cookie) =>
      Effect.gen(function*() {
        const value = Redacted.value(cookie)
        const session = COOKIE_VALUE_PATTERN.test(value) ? sessions.get(sha256Hex(value)) : undefined
        if (session === undefined) return yield* new BrowserSessionRefused({ reason: "unknown_session" })
        const now = yield* Clock.currentTimeMillis
        if (session.revokedAt !== null) return yield* new BrowserSessionRefused({ reason: "revoked_session" })
        if (session.absoluteExpiresAt <= now) return yield* new BrowserSessionRefused({ reason: "expired_absolute" })
        if (session.idleExpiresAt <= now) return yield* new BrowserSessionRefused({ reason: "expired_idle" })
        if (sourceTokenEnded(session, now)) return yield* new BrowserSessionRefused({ reason: "source_token_revoked" })
        const membership = memberships.get(memberKey(session.orgId, session.accountId))
        if (membership === undefined) return yield* new BrowserSessionRefused({ reason: "no_membership" })
        session.lastSeenAt = now
        session.idleExpiresAt = Math.min(now + session.idleMs, session.absoluteExpiresAt)
        return {
          sessionId: session.id,
          orgId: session.orgId,
          accountId: session.accountId,
          email: accounts.get(session.accountId)?.email ?? null,
          role: membership.role,
          csrfToken: Redacted.make(session.csrfToken),
          sourceTokenId: session.sourceTokenId
        }
      }),
    endedAmong: (sessionIds) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const byId = new Map([...sessions.values()].map((session) => [session.id, session]))
        const ended: Array<string> = []
        let next: number | null = null
        for (const id of sessionIds) {
          const session = byId.get(id)
          if (session === undefined || !live(session, now) || !memberships.has(memberKey(session.orgId, session.accountId))) {
            ended.push(id)
            continue
          }
          const source = session.sourceTokenId === null ? undefined : db?.tokens.get(session.sourceTokenId)?.expiresAt ?? undefined
          const expires = Math.min(session.idleExpiresAt, session.absoluteExpiresAt, source ?? Number.POSITIVE_INFINITY)
          next = Math.min(next ?? expires, expires)
        }
        return { ended, nextExpiryInMs: next === null ? null : next - now }
      }),
    revokeSession: (orgId, sessionId) =>
      Effect.map(Clock.currentTimeMillis, (now) =>
        endSessions(now, (session) => session.orgId === orgId && session.id === sessionId) > 0),
    revokeAccountSessions: (orgId, accountId) =>
      Effect.map(Clock.currentTimeMillis, (now) =>
        endSessions(now, (session) => session.orgId === orgId && session.accountId === accountId)),
    revokeOrgSessions: (orgId) =>
      Effect.map(Clock.currentTimeMillis, (now) => endSessions(now, (session) => session.orgId === orgId)),
    listSessions: (orgId, accountId) =>
      Effect.map(Clock.currentTimeMillis, (now) =>
        [...sessions.values()]
          .filter((session) => session.orgId === orgId && (accountId === undefined || session.accountId === accountId) && live(session, now))
          .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id))
          .map(viewOf)),
    beginLogin: (login, ttlMs) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const loginId = newSecret()
        logins.set(sha256Hex(loginId), { login, expiresAt: now + ttlMs })
        return Redacted.make(loginId)
      }),
    consumeLogin: (loginId) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const key = sha256Hex(Redacted.value(loginId))
        const entry = logins.get(key)
        logins.delete(key)
        return entry !== undefined && entry.expiresAt > now ? entry.login : undefined
      })
  })
}
