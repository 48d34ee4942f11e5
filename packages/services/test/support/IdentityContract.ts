import { Identity, Tokens } from "@cowork/services"
import { assert, layer } from "@effect/vitest"
import { Effect, type Layer, Redacted } from "effect"

/**
 * What every Identity does, run against the in-memory layer and the Postgres one: accounts keyed by issuer + subject,
 * memberships and roles, browser sessions (open, authenticate, idle / absolute expiry, revoke one / an account's /
 * an org's, removal of the member), one-time login transactions. `newOrg` makes an org the store accepts;
 * `storedSessions`, when given, dumps what the store keeps so the cookie value can be checked never to be stored.
 */

const HOUR = 3_600_000
const lifetimes = { idleMs: HOUR, absoluteMs: 12 * HOUR }

export const identityContract = <E, R = never>(
  name: string,
  identityLayer: Layer.Layer<Identity | Tokens | R, E>,
  newOrg: Effect.Effect<string, never, R | Tokens>,
  storedSessions?: Effect.Effect<string, never, R>
) =>
  layer(identityLayer, { timeout: 60_000 })(`Identity contract: ${name}`, (it) => {
    const person = (label: string) =>
      Effect.gen(function*() {
        const identity = yield* Identity
        return yield* identity.upsertAccount({
          issuer: "https://idp.example",
          subject: `${label}-${globalThis.crypto.randomUUID()}`,
          email: `${label}@example.com`,
          name: label
        })
      })

    it.effect("an account is one per issuer + subject; a later sign-in refreshes its email and name", () =>
      Effect.gen(function*() {
        const identity = yield* Identity
        const subject = `sub-${globalThis.crypto.randomUUID()}`
        const first = yield* identity.upsertAccount({ issuer: "https://a.example", subject, email: "old@example.com", name: "Old" })
        const again = yield* identity.upsertAccount({ issuer: "https://a.example", subject, email: "new@example.com", name: "New" })
        const otherIssuer = yield* identity.upsertAccount({ issuer: "https://b.example", subject, email: null, name: null })
        assert.strictEqual(again.id, first.id)
        assert.strictEqual(again.email, "new@example.com")
        assert.notStrictEqual(otherIssuer.id, first.id)
        assert.strictEqual((yield* identity.getAccount(first.id))?.name, "New")
      }))

    it.effect("only a member gets a session; the role is read on every request, so a demotion applies at once", () =>
      Effect.gen(function*() {
        const identity = yield* Identity
        const orgId = yield* newOrg
        const alice = yield* person("alice")
        const refused = yield* Effect.flip(identity.openSession({ orgId, accountId: alice.id, lifetimes }))
        assert.strictEqual(refused._tag, "NotAMember")

        const member = yield* identity.setRole(orgId, alice.id, "admin")
        assert.deepInclude(member, { accountId: alice.id, email: "alice@example.com", role: "admin" })
        const opened = yield* identity.openSession({ orgId, accountId: alice.id, lifetimes })
        assert.match(Redacted.value(opened.cookie), /^[A-Za-z0-9_-]{43}$/)
        assert.notStrictEqual(Redacted.value(opened.cookie), Redacted.value(opened.csrfToken))
        const authenticated = yield* identity.authenticateSession(opened.cookie)
        assert.deepInclude(authenticated, { sessionId: opened.session.id, orgId, accountId: alice.id, role: "admin", email: "alice@example.com" })
        assert.strictEqual(Redacted.value(authenticated.csrfToken), Redacted.value(opened.csrfToken))

        yield* identity.setRole(orgId, alice.id, "member")
        assert.strictEqual((yield* identity.authenticateSession(opened.cookie)).role, "member")
        assert.deepStrictEqual((yield* identity.listMembers(orgId)).map((m) => [m.accountId, m.role]), [[alice.id, "member"]])
      }))

    it.effect("unknown, malformed, idle-expired, absolutely-expired and revoked cookies are refused with their reason", () =>
      Effect.gen(function*() {
        const identity = yield* Identity
        const orgId = yield* newOrg
        const bob = yield* person("bob")
        yield* identity.setRole(orgId, bob.id, "member")
        const reason = (cookie: string) =>
          Effect.map(Effect.flip(identity.authenticateSession(Redacted.make(cookie))), (error) => error.reason)

        assert.strictEqual(yield* reason("A".repeat(43)), "unknown_session")
        assert.strictEqual(yield* reason("not a cookie; Path=/"), "unknown_session")
        const idle = yield* identity.openSession({ orgId, accountId: bob.id, lifetimes: { idleMs: -1, absoluteMs: HOUR } })
        assert.strictEqual(yield* reason(Redacted.value(idle.cookie)), "expired_idle")
        const absolute = yield* identity.openSession({ orgId, accountId: bob.id, lifetimes: { idleMs: HOUR, absoluteMs: -1 } })
        assert.strictEqual(yield* reason(Redacted.value(absolute.cookie)), "expired_absolute")
        assert.isAtMost(Date.parse(absolute.session.idleExpiresAt), Date.parse(absolute.session.absoluteExpiresAt), "idle never outlives absolute")

        const live = yield* identity.openSession({ orgId, accountId: bob.id, lifetimes })
        const other = yield* identity.openSession({ orgId, accountId: bob.id, lifetimes })
        assert.sameMembers((yield* identity.listSessions(orgId, bob.id)).map((s) => s.id), [live.session.id, other.session.id], "only the live ones")
        assert.isFalse(yield* identity.revokeSession(yield* newOrg, live.session.id), "another org cannot end it")
        assert.isTrue(yield* identity.revokeSession(orgId, live.session.id))
        assert.isFalse(yield* identity.revokeSession(orgId, live.session.id), "revoking twice is a no-op")
        assert.strictEqual(yield* reason(Redacted.value(live.cookie)), "revoked_session")
        assert.strictEqual((yield* identity.authenticateSession(other.cookie)).sessionId, other.session.id, "the other session lives on")
      }))

    it.effect("log out everywhere, member removal and org-wide revocation end every live session at once", () =>
      Effect.gen(function*() {
        const identity = yield* Identity
        const orgId = yield* newOrg
        const carol = yield* person("carol")
        const dave = yield* person("dave")
        yield* identity.setRole(orgId, carol.id, "owner")
        yield* identity.setRole(orgId, dave.id, "member")
        const carolSessions = [
          yield* identity.openSession({ orgId, accountId: carol.id, lifetimes }),
          yield* identity.openSession({ orgId, accountId: carol.id, lifetimes })
        ]
        const daveSession = yield* identity.openSession({ orgId, accountId: dave.id, lifetimes })
        assert.strictEqual(yield* identity.revokeAccountSessions(orgId, carol.id), 2)
        for (const session of carolSessions) {
          assert.strictEqual((yield* Effect.flip(identity.authenticateSession(session.cookie))).reason, "revoked_session")
        }
        assert.strictEqual((yield* identity.authenticateSession(daveSession.cookie)).accountId, dave.id)

        assert.isTrue(yield* identity.removeMember(orgId, dave.id))
        assert.strictEqual((yield* Effect.flip(identity.authenticateSession(daveSession.cookie))).reason, "revoked_session")
        assert.strictEqual((yield* Effect.flip(identity.openSession({ orgId, accountId: dave.id, lifetimes })))._tag, "NotAMember")
        assert.isFalse(yield* identity.removeMember(orgId, dave.id))

        const fresh = yield* identity.openSession({ orgId, accountId: carol.id, lifetimes })
        assert.strictEqual(yield* identity.revokeOrgSessions(orgId), 1)
        assert.strictEqual((yield* Effect.flip(identity.authenticateSession(fresh.cookie))).reason, "revoked_session")
        assert.deepStrictEqual(yield* identity.listSessions(orgId), [])
      }))

    it.effect("a session signed in with a token (token login) ends when that token is revoked; others live on", () =>
      Effect.gen(function*() {
        const identity = yield* Identity
        const tokens = yield* Tokens
        const { orgId } = yield* tokens.createOrg("token-login")
        const token = yield* tokens.issue({ orgId, name: "owner", scopes: ["admin", "web"] })
        const other = yield* tokens.issue({ orgId, name: "other", scopes: ["admin", "web"] })
        const account = yield* person("owner-token")
        yield* identity.setRole(orgId, account.id, "owner")
        const viaToken = yield* identity.openSession({ orgId, accountId: account.id, lifetimes, sourceTokenId: token.tokenId })
        const viaOther = yield* identity.openSession({ orgId, accountId: account.id, lifetimes, sourceTokenId: other.tokenId })
        const plain = yield* identity.openSession({ orgId, accountId: account.id, lifetimes })
        assert.strictEqual((yield* identity.authenticateSession(viaToken.cookie)).sourceTokenId, token.tokenId)
        assert.isNull((yield* identity.authenticateSession(plain.cookie)).sourceTokenId)
        const ids = [viaToken.session.id, viaOther.session.id, plain.session.id]
        const live = yield* identity.endedAmong(ids)
        assert.deepStrictEqual(live.ended, [])
        assert.isTrue(live.nextExpiryInMs! > HOUR - 60_000 && live.nextExpiryInMs! <= HOUR, "the idle lifetime is the next check")

        yield* tokens.revoke(token.tokenId, { orgId })
        assert.strictEqual((yield* Effect.flip(identity.authenticateSession(viaToken.cookie)))._tag, "BrowserSessionRefused")
        assert.deepStrictEqual((yield* identity.endedAmong(ids)).ended, [viaToken.session.id])
        assert.strictEqual((yield* identity.authenticateSession(viaOther.cookie)).sessionId, viaOther.session.id)
        assert.strictEqual((yield* identity.authenticateSession(plain.cookie)).sessionId, plain.session.id)
        assert.notInclude((yield* identity.listSessions(orgId)).map((session) => session.id), viaToken.session.id)

        yield* identity.revokeSession(orgId, plain.session.id)
        assert.deepStrictEqual((yield* identity.endedAmong(ids)).ended, [viaToken.session.id, plain.session.id])
        assert.deepStrictEqual(yield* identity.endedAmong(["bs_unknown"]), { ended: ["bs_unknown"], nextExpiryInMs: null }, "an unknown session counts as ended")
      }))

    it.effect("an invitation by email becomes a membership at the invitee's sign-in, once", () =>
      Effect.gen(function*() {
        const identity = yield* Identity
        const orgId = yield* newOrg
        const invitee = yield* person("invitee")
        assert.isUndefined(yield* identity.acceptInvitation(orgId, "invitee@example.com", invitee.id))
        yield* identity.invite(orgId, "Invitee@Example.com", "member")
        yield* identity.invite(orgId, "invitee@example.com", "admin")
        assert.strictEqual(yield* identity.acceptInvitation(orgId, "INVITEE@example.com", invitee.id), "admin")
        assert.strictEqual(yield* identity.role(orgId, invitee.id), "admin")
        assert.isUndefined(yield* identity.acceptInvitation(orgId, "invitee@example.com", invitee.id), "taken once")
        assert.isUndefined(yield* identity.acceptInvitation(yield* newOrg, "invitee@example.com", invitee.id), "only in the inviting org")
      }))

    it.effect("a login transaction is taken once, and not after it expired", () =>
      Effect.gen(function*() {
        const identity = yield* Identity
        const login = { state: "s".repeat(43), nonce: "n".repeat(43), codeVerifier: "v".repeat(43), returnTo: "/" }
        const id = yield* identity.beginLogin(login, 600_000)
        assert.deepStrictEqual(yield* identity.consumeLogin(id), login)
        assert.isUndefined(yield* identity.consumeLogin(id), "replayed")
        const expired = yield* identity.beginLogin(login, -1)
        assert.isUndefined(yield* identity.consumeLogin(expired))
        assert.isUndefined(yield* identity.consumeLogin(Redacted.make("never-issued")))
      }))

    if (storedSessions !== undefined) {
      it.effect("the store keeps only a hash of the cookie value", () =>
        Effect.gen(function*() {
          const identity = yield* Identity
          const orgId = yield* newOrg
          const erin = yield* person("erin")
          yield* identity.setRole(orgId, erin.id, "member")
          const opened = yield* identity.openSession({ orgId, accountId: erin.id, lifetimes })
          const stored = yield* storedSessions
          assert.include(stored, opened.session.id)
          assert.notInclude(stored, Redacted.value(opened.cookie))
        }))
    }
  })
