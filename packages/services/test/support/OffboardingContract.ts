import {
  ByokStore,
  ChannelStore,
  DeliveryFeed,
  EventLog,
  Identity,
  LeaseStore,
  Offboarding,
  SessionStore,
  Tokens,
  WorkerRegistry
} from "@cowork/services"
import { assert, layer } from "@effect/vitest"
import { Effect, type Layer, Redacted } from "effect"

const lifetimes = { idleMs: 3_600_000, absoluteMs: 7_200_000 }

/**
 * Offboarding on memory and Postgres: an org with live tokens, browser sessions, queued prompts, open sessions, channel
 * bindings with pending and claimed deliveries and a gateway token ends with nothing active, every credential refused
 * (a gateway's late ack is ClaimLost); another org is untouched; a second run ends nothing new.
 */
export const offboardingContract = <E, R = never>(
  name: string,
  offboardingLayer: Layer.Layer<
    Offboarding | Identity | Tokens | SessionStore | WorkerRegistry | ByokStore | ChannelStore | DeliveryFeed | EventLog | LeaseStore | R,
    E
  >
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
        const channels = yield* ChannelStore
        const feed = yield* DeliveryFeed
        const actor = { orgId: null, actor: "test:offboarding" }

        const seed = Effect.gen(function*() {
          const { orgId } = yield* tokens.createOrg(`org-${globalThis.crypto.randomUUID().slice(0, 6)}`)
          const token = yield* tokens.issue({ orgId, name: "ci", scopes: ["web"] })
          const account = yield* identity.upsertAccount({ issuer: "https://idp", subject: globalThis.crypto.randomUUID(), email: null, name: null })
          yield* identity.setRole(orgId, account.id, "member")
          const browser = yield* identity.openSession({ orgId, accountId: account.id, lifetimes })
          const session = yield* sessions.create(orgId, {})
          const queued = [
            (yield* sessions.prompt(orgId, session.id, { text: "queued" })).commandId,
            (yield* sessions.prompt(orgId, session.id, { text: "queued too" })).commandId
          ]
          const pool = yield* registry.createPool({ name: "own", mode: "self_hosted", orgId, maxWorkers: 2, maxConcurrentWork: 2 }, actor).pipe(Effect.orDie)
          const worker = yield* registry.registerWorker({ poolId: pool.id }, actor).pipe(Effect.orDie)
          yield* registry.issueCredential(worker.id, {}, actor).pipe(Effect.orDie)
          yield* byok.put(orgId, "openai", { apiKey: Redacted.make("sk-test-0123456789abcdef") }).pipe(Effect.orDie)
          // A channel binding routed to the session, two replies (deliveries), one of them claimed by the org's gateway.
          const binding = yield* channels.createBinding(orgId, {
            providerKind: "telegram",
            providerId: "tg-main",
            displayName: "team chat",
            externalTarget: `-100${globalThis.crypto.randomUUID().slice(0, 6)}`
          })
          yield* channels.bindSession(orgId, binding.id, "c1", session.id).pipe(Effect.orDie)
          const gateway = yield* tokens.issue({ orgId, name: "gw", scopes: ["gateway"] })
          yield* channels.grantGatewayToken(orgId, gateway.tokenId, [binding.id]).pipe(Effect.orDie)
          const leases = yield* (yield* LeaseStore).claim(`w-${session.id}`, 100, 30_000, 3)
          const lease = leases.find((l) => l.sessionId === session.id)!
          yield* (yield* EventLog).append(lease, ["one", "two"].map((text) => ({
            type: "assistant.message" as const,
            payload: { messageId: `m-${text}`, text, final: true }
          }))).pipe(Effect.orDie)
          for (const other of leases) if (other !== lease) yield* (yield* LeaseStore).expire(other).pipe(Effect.ignore)
          const claimed = (yield* feed.claim({ orgId, bindingIds: [binding.id] }, { limit: 1, ttlMs: 30_000, claimedBy: gateway.tokenId }))
            .deliveries[0]!
          return { orgId, token, browser, sessionId: session.id, workerId: worker.id, gateway, binding, claimed, queued }
        })
        const acme = yield* seed
        const bystander = yield* seed
        const log = yield* EventLog
        const before = yield* log.read(acme.sessionId, 0, 100)
        const bystanderBefore = yield* log.read(bystander.sessionId, 0, 100)

        const report = yield* offboarding.offboard(acme.orgId)
        assert.deepStrictEqual(report.ended, {
          apiTokens: 2,
          browserSessions: 1,
          pendingCommands: 2,
          sessions: 1,
          workflows: 0,
          workers: 1,
          workerCredentials: 1,
          byokKeys: 1,
          gatewayTokens: 1,
          channelBindings: 1,
          deliveries: 2
        })
        assert.deepStrictEqual(report.remaining, {
          liveApiTokens: 0,
          liveBrowserSessions: 0,
          pendingCommands: 0,
          runningCommands: 0,
          openSessions: 0,
          activeWorkflows: 0,
          liveWorkerCredentials: 0,
          byokKeys: 0,
          liveGatewayTokens: 0,
          activeChannelBindings: 0,
          openDeliveries: 0
        })
        assert.strictEqual((yield* Effect.flip(tokens.authenticate(acme.gateway.token)))._tag, "Unauthorized", "the gateway token is refused")
        const scope = { orgId: acme.orgId, bindingIds: [acme.binding.id] }
        const lateAck = yield* Effect.flip(feed.ack(scope, acme.claimed.id, { claimToken: acme.claimed.claimToken, outcome: "sent" }))
        assert.strictEqual(lateAck._tag, "ClaimLost", "a gateway mid-send cannot mark it sent")
        const dead = yield* feed.list({ orgId: acme.orgId }, { limit: 10 })
        assert.deepStrictEqual(dead.deliveries.map((d) => [d.status, d.lastError]), [
          ["dead", "the organization was offboarded"],
          ["dead", "the organization was offboarded"]
        ])
        assert.strictEqual((yield* channels.getBinding(acme.orgId, acme.binding.id)).status, "disabled")
        assert.deepStrictEqual((yield* feed.claim(scope, { limit: 10, ttlMs: 30_000, claimedBy: "late" })).deliveries, [])
        assert.deepStrictEqual(yield* byok.list(acme.orgId), [])
        assert.strictEqual((yield* Effect.flip(tokens.authenticate(acme.token.token)))._tag, "Unauthorized")
        assert.strictEqual((yield* Effect.flip(identity.authenticateSession(acme.browser.cookie))).reason, "revoked_session")
        assert.strictEqual((yield* Effect.flip(sessions.prompt(acme.orgId, acme.sessionId, { text: "after" })))._tag, "Conflict")

        // A client reading the session's log learns its queued prompts were cancelled, in mailbox order, right after
        // what it had seen (no gap), and that the session, queued with nothing running, is idle again.
        const after = (yield* log.read(acme.sessionId, 0, 100)).slice(before.length)
        const reason = "the organization was offboarded"
        assert.deepStrictEqual(after.map((event) => [event.sequence, event.type, event.payload]), [
          [before.length + 1, "command.cancelled", { commandId: acme.queued[0], kind: "prompt", reason }],
          [before.length + 2, "command.cancelled", { commandId: acme.queued[1], kind: "prompt", reason }],
          [before.length + 3, "session.status", { status: "idle", commandId: acme.queued[1] }]
        ])
        assert.strictEqual((yield* sessions.view(acme.orgId, acme.sessionId)).status, "idle")
        assert.deepStrictEqual(yield* log.read(bystander.sessionId, 0, 100), bystanderBefore, "another org's log is untouched")

        assert.deepInclude(yield* tokens.authenticate(bystander.token.token), { kind: "org", orgId: bystander.orgId })
        assert.strictEqual((yield* identity.authenticateSession(bystander.browser.cookie)).orgId, bystander.orgId)
        assert.deepInclude(yield* offboarding.activity(bystander.orgId), {
          liveApiTokens: 2,
          liveBrowserSessions: 1,
          pendingCommands: 2,
          openSessions: 1,
          liveWorkerCredentials: 1,
          byokKeys: 1,
          liveGatewayTokens: 1,
          activeChannelBindings: 1,
          openDeliveries: 2
        })

        // An offboarded org gets no new token and no new browser session.
        assert.strictEqual((yield* Effect.flip(tokens.issue({ orgId: acme.orgId, name: "late", scopes: ["web"] })))._tag, "Conflict")
        const member = yield* identity.upsertAccount({ issuer: "https://idp", subject: globalThis.crypto.randomUUID(), email: null, name: null })
        yield* identity.setRole(acme.orgId, member.id, "member")
        assert.strictEqual((yield* Effect.flip(identity.openSession({ orgId: acme.orgId, accountId: member.id, lifetimes })))._tag, "NotAMember")
        yield* tokens.issue({ orgId: bystander.orgId, name: "still", scopes: ["web"] })

        const again = yield* offboarding.offboard(acme.orgId)
        assert.deepStrictEqual(Object.values(again.ended), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        assert.strictEqual(again.offboardedAt, report.offboardedAt, "the first offboarding time is kept")
        assert.strictEqual((yield* log.read(acme.sessionId, 0, 100)).length, before.length + 3, "a second run appends nothing")
        assert.strictEqual((yield* Effect.flip(offboarding.offboard("org_nope")))._tag, "NotFound")
        assert.isString(Redacted.value(acme.token.token))
      }))
  })
