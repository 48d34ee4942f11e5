import { ByokStore, Identity, Offboarding, SessionStore, Tokens, WorkerRegistry } from "@cowork/services"
import { assert, layer } from "@effect/vitest"
import { Effect, type Layer, Redacted } from "effect"

const lifetimes = { idleMs: 3_600_000, absoluteMs: 7_200_000 }

/**
 * Offboarding on memory and Postgres: an org with live tokens, browser sessions, queued prompts and open sessions
 * ends with nothing active, every credential refused; another org is untouched; a second run ends nothing new.
 */
export const offboardingContract = <E, R = never>(
  name: string,
  offboardingLayer: Layer.Layer<Offboarding | Identity | Tokens | SessionStore | WorkerRegistry | ByokStore | R, E>
) =>
  layer(offboardingLayer, { timeout: 60_000 })(`Offboarding contract: ${name}`, (it) => {
    it.effect("leaves nothing active and refuses every credential; other orgs are untouched; idempotent", () =>
      Effect.gen(function*() {
        const tokens = yield* Tokens
        const identity = yield* Identity
        const sessions = yield* SessionStore
        const offboarding = yield* Offboarding
        const registry = yield* WorkerRegistry
        const byok = yield* ByokStore
        const actor = { orgId: null, actor: "test:offboarding" }

        const seed = Effect.gen(function*() {
          const { orgId } = yield* tokens.createOrg(`org-${globalThis.crypto.randomUUID().slice(0, 6)}`)
          const token = yield* tokens.issue({ orgId, name: "ci", scopes: ["web"] })
          const account = yield* identity.upsertAccount({ issuer: "https://idp", subject: globalThis.crypto.randomUUID(), email: null, name: null })
          yield* identity.setRole(orgId, account.id, "member")
          const browser = yield* identity.openSession({ orgId, accountId: account.id, lifetimes })
          const session = yield* sessions.create(orgId, {})
          yield* sessions.prompt(orgId, session.id, { text: "queued" })
          yield* sessions.prompt(orgId, session.id, { text: "queued too" })
          const pool = yield* registry.createPool({ name: "own", mode: "self_hosted", orgId, maxWorkers: 2, maxConcurrentWork: 2 }, actor).pipe(Effect.orDie)
          const worker = yield* registry.registerWorker({ poolId: pool.id }, actor).pipe(Effect.orDie)
          yield* registry.issueCredential(worker.id, {}, actor).pipe(Effect.orDie)
          yield* byok.put(orgId, "openai", { apiKey: Redacted.make("sk-test-0123456789abcdef") }).pipe(Effect.orDie)
          return { orgId, token, browser, sessionId: session.id, workerId: worker.id }
        })
        const acme = yield* seed
        const bystander = yield* seed

        const report = yield* offboarding.offboard(acme.orgId)
        assert.deepStrictEqual(report.ended, {
          apiTokens: 1,
          browserSessions: 1,
          pendingCommands: 2,
          sessions: 1,
          workflows: 0,
          workers: 1,
          workerCredentials: 1,
          byokKeys: 1
        })
        assert.deepStrictEqual(report.remaining, {
          liveApiTokens: 0,
          liveBrowserSessions: 0,
          pendingCommands: 0,
          runningCommands: 0,
          openSessions: 0,
          activeWorkflows: 0,
          liveWorkerCredentials: 0,
          byokKeys: 0
        })
        assert.deepStrictEqual(yield* byok.list(acme.orgId), [])
        assert.strictEqual((yield* Effect.flip(tokens.authenticate(acme.token.token)))._tag, "Unauthorized")
        assert.strictEqual((yield* Effect.flip(identity.authenticateSession(acme.browser.cookie))).reason, "revoked_session")
        assert.strictEqual((yield* Effect.flip(sessions.prompt(acme.orgId, acme.sessionId, { text: "after" })))._tag, "Conflict")

        assert.deepInclude(yield* tokens.authenticate(bystander.token.token), { kind: "org", orgId: bystander.orgId })
        assert.strictEqual((yield* identity.authenticateSession(bystander.browser.cookie)).orgId, bystander.orgId)
        assert.deepInclude(yield* offboarding.activity(bystander.orgId), {
          liveApiTokens: 1,
          liveBrowserSessions: 1,
          pendingCommands: 2,
          openSessions: 1,
          liveWorkerCredentials: 1,
          byokKeys: 1
        })

        // An offboarded org gets no new token and no new browser session.
        assert.strictEqual((yield* Effect.flip(tokens.issue({ orgId: acme.orgId, name: "late", scopes: ["web"] })))._tag, "Conflict")
        const member = yield* identity.upsertAccount({ issuer: "https://idp", subject: globalThis.crypto.randomUUID(), email: null, name: null })
        yield* identity.setRole(acme.orgId, member.id, "member")
        assert.strictEqual((yield* Effect.flip(identity.openSession({ orgId: acme.orgId, accountId: member.id, lifetimes })))._tag, "NotAMember")
        yield* tokens.issue({ orgId: bystander.orgId, name: "still", scopes: ["web"] })

        const again = yield* offboarding.offboard(acme.orgId)
        assert.deepStrictEqual(Object.values(again.ended), [0, 0, 0, 0, 0, 0, 0, 0])
        assert.strictEqual(again.offboardedAt, report.offboardedAt, "the first offboarding time is kept")
        assert.strictEqual((yield* Effect.flip(offboarding.offboard("org_nope")))._tag, "NotFound")
        assert.isString(Redacted.value(acme.token.token))
      }))
  })
