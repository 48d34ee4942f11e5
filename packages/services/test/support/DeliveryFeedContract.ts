import { ClaimLost, Conflict, type EventDraft, Forbidden, NotFound } from "@cowork/domain"
import { ChannelStore, DeliveryFeed, type DeliveryScope, EventLog, SessionStore } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { type ControlPlaneHarness, onFreshStore } from "./ControlPlaneHarness.ts"
import { claimOne, newOrg, prompt } from "./ControlPlaneFixtures.ts"

/**
 * The outbox and the delivery feed (issue 11), on memory and Postgres: a bound session's final replies, questions
 * and permission requests become deliveries with their events; claims are exclusive and fenced (an expired or
 * re-claimed claim cannot ack or renew); the attempt cap and backoff are the server's; the reaper returns expired
 * claims; retry / dead-letter; scope (another binding or org is NotFound).
 */

const TTL = 5_000
/** Past the longest backoff (`backoffMaxMs`). */
const PAST_BACKOFF = 700_000

/** An org with a telegram binding and a session routed to chat `c1` that has a live lease for appends. */
const boundSession = (status: "active" | "disabled" = "active") =>
  Effect.gen(function*() {
    const channels = yield* ChannelStore
    const orgId = yield* newOrg
    const binding = yield* channels.createBinding(orgId, {
      providerKind: "telegram",
      providerId: "tg-main",
      displayName: "team chat",
      externalTarget: "-100200",
      status
    })
    const session = yield* (yield* SessionStore).create(orgId, {})
    const route = yield* channels.bindSession(orgId, binding.id, "c1", session.id)
    yield* prompt({ orgId, sessionId: session.id })
    const lease = yield* claimOne(`w-${session.id}`, session.id)
    return { orgId, binding, session, route, lease }
  }).pipe(Effect.orDie)

const reply = (text: string): EventDraft => ({ type: "assistant.message", payload: { messageId: `m-${text}`, text, final: true } })

const claimAll = (scope: DeliveryScope, claimedBy = "tok_a", limit = 10) =>
  Effect.flatMap(Effect.service(DeliveryFeed), (feed) =>
    Effect.map(feed.claim(scope, { limit, ttlMs: TTL, claimedBy, replica: "gw-1" }), (claim) => claim.deliveries))

const claimWithin = (scope: DeliveryScope, deliveriesPerHour: number, claimedBy = "tok_a") =>
  Effect.flatMap(Effect.service(DeliveryFeed), (feed) => feed.claim(scope, { limit: 10, ttlMs: TTL, claimedBy, deliveriesPerHour }))

export const deliveryFeedContract = <R>(harness: ControlPlaneHarness<R>) =>
  describe(`DeliveryFeed contract: ${harness.name}`, () => {
    it.effect("a bound session's final reply, question and permission request become deliveries with their events; nothing else does", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const feed = yield* DeliveryFeed
        const log = yield* EventLog
        const { orgId, binding, session, route, lease } = yield* boundSession()
        yield* log.append(lease, [
          { type: "assistant.message", payload: { messageId: "m1", delta: "he", final: false } },
          reply("hello"),
          { type: "tool.call", payload: { callId: "t1", tool: "bash" } },
          { type: "question.asked", payload: { requestId: "q1", questions: [{ question: "which?" }] } },
          { type: "permission.requested", payload: { permissionId: "p1", permission: "bash" } }
        ])
        const page = yield* feed.list({ orgId }, { limit: 50 })
        assert.strictEqual(page.totalEstimate, 3)
        const byKind = Object.fromEntries(page.deliveries.map((d) => [d.kind, d]))
        assert.deepStrictEqual(Object.keys(byKind).sort(), ["message", "permission", "question"])
        const message = byKind.message!
        assert.deepInclude(message, {
          channelBindingId: binding.id,
          providerKind: "telegram",
          providerId: "tg-main",
          externalTarget: "-100200",
          externalThreadId: "c1",
          sessionId: session.id,
          eventType: "assistant.message",
          status: "pending",
          attempts: 0
        })
        assert.strictEqual((message.payload as { text: string }).text, "hello")
        const events = yield* log.read(session.id, 0, 100)
        const event = events.find((e) => e.eventId === message.eventId)!
        assert.strictEqual(event.sequence, message.eventSequence, "the delivery names its event")
        assert.strictEqual(message.idempotencyKey, `ocd_${message.eventId}_${route.id}`)

        // An unbound session's replies and a disabled binding's sessions make none.
        const other = yield* boundSession("disabled")
        yield* log.append(other.lease, [reply("quiet")])
        assert.strictEqual((yield* feed.list({ orgId: other.orgId }, { limit: 50 })).totalEstimate, 0)
      })))

    it.effect("claims are exclusive; an ack fenced by the claim token marks it sent, once", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const feed = yield* DeliveryFeed
        const { orgId, binding, lease } = yield* boundSession()
        yield* (yield* EventLog).append(lease, [reply("one"), reply("two")])
        const scope = { orgId, bindingIds: [binding.id] }
        const first = yield* claimAll(scope, "tok_a", 1)
        assert.strictEqual(first.length, 1)
        const second = yield* claimAll(scope, "tok_b")
        assert.strictEqual(second.length, 1, "the held one is skipped")
        assert.notStrictEqual(first[0]!.id, second[0]!.id)
        assert.deepStrictEqual(yield* claimAll(scope, "tok_c"), [], "nothing left")
        assert.deepInclude(first[0]!, { status: "claimed", attempts: 1, lastClaimedBy: "tok_a", lastClaimedReplica: "gw-1" })

        const sent = yield* feed.ack(scope, first[0]!.id, { claimToken: first[0]!.claimToken, outcome: "sent", providerMessageId: "42" })
        assert.deepInclude(sent, { status: "sent", providerMessageId: "42", claimExpiresAt: null })
        assert.isNotNull(sent.sentAt)
        const again = yield* Effect.flip(feed.ack(scope, first[0]!.id, { claimToken: first[0]!.claimToken, outcome: "sent" }))
        assert.instanceOf(again, ClaimLost)
        assert.strictEqual((again as ClaimLost).reason, "not_claimed")
      })))

    it.effect("a gateway whose claim expired cannot ack or renew; once re-claimed, the old token is refused as reclaimed", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const feed = yield* DeliveryFeed
        const { orgId, binding, lease } = yield* boundSession()
        yield* (yield* EventLog).append(lease, [reply("one")])
        const scope = { orgId, bindingIds: [binding.id] }
        const [claimed] = yield* claimAll(scope, "tok_a")
        yield* harness.elapse(TTL - 1_000)
        const renewed = yield* feed.renew(scope, claimed!.id, claimed!.claimToken, TTL)
        assert.strictEqual(renewed.status, "claimed")
        yield* harness.elapse(TTL + 1_000)
        const expired = yield* Effect.flip(feed.ack(scope, claimed!.id, { claimToken: claimed!.claimToken, outcome: "sent" }))
        assert.instanceOf(expired, ClaimLost)
        assert.strictEqual((expired as ClaimLost).reason, "expired")
        assert.instanceOf(yield* Effect.flip(feed.renew(scope, claimed!.id, claimed!.claimToken, TTL)), ClaimLost)
        assert.strictEqual((yield* feed.get(scope, claimed!.id)).status, "claimed", "the refused ack changed nothing")

        const reaped = yield* feed.reap
        assert.deepInclude(reaped, { returned: 1, dead: 0 })
        const [again] = yield* claimAll(scope, "tok_b")
        assert.strictEqual(again!.id, claimed!.id)
        assert.strictEqual(again!.attempts, 2)
        const stale = yield* Effect.flip(feed.ack(scope, claimed!.id, { claimToken: claimed!.claimToken, outcome: "sent" }))
        assert.strictEqual((stale as ClaimLost).reason, "reclaimed")
        assert.strictEqual((yield* feed.ack(scope, again!.id, { claimToken: again!.claimToken, outcome: "sent" })).status, "sent")
      })))

    it.effect("a failed ack waits for the server's backoff (at least retryAfterMs); the attempt cap makes it dead, whatever the client says", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const feed = yield* DeliveryFeed
        const { orgId, binding, lease } = yield* boundSession()
        yield* (yield* EventLog).append(lease, [reply("one")])
        const scope = { orgId, bindingIds: [binding.id] }
        const [first] = yield* claimAll(scope)
        const failed = yield* feed.ack(scope, first!.id, {
          claimToken: first!.claimToken,
          outcome: "failed",
          error: "provider answered 429",
          retryAfterMs: 30_000
        })
        assert.deepInclude(failed, { status: "failed", lastError: "provider answered 429" })
        assert.isAtLeast(Date.parse(failed.nextAttemptAt!) - Date.parse(failed.updatedAt), 29_000, "retryAfterMs is a floor")
        assert.deepStrictEqual(yield* claimAll(scope), [], "not due before its backoff")
        yield* harness.elapse(31_000)
        let attempts = 1
        while (true) {
          const [claimed] = yield* claimAll(scope)
          assert.isDefined(claimed, `attempt ${attempts + 1} is claimable after its backoff`)
          attempts = claimed!.attempts
          const acked = yield* feed.ack(scope, claimed!.id, { claimToken: claimed!.claimToken, outcome: "failed", error: "500" })
          if (acked.status === "dead") break
          assert.strictEqual(acked.status, "failed")
          yield* harness.elapse(PAST_BACKOFF)
        }
        assert.strictEqual(attempts, (yield* feed.get(scope, first!.id)).maxAttempts, "dead exactly at the cap")
        yield* harness.elapse(PAST_BACKOFF)
        assert.deepStrictEqual(yield* claimAll(scope), [], "a dead delivery is never claimed again")
      })))

    it.effect("an expired claim at the cap is dead after the reap; the reaper drains at most its cap", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const feed = yield* DeliveryFeed
        const { orgId, binding, lease } = yield* boundSession()
        yield* (yield* EventLog).append(lease, [reply("one")])
        const scope = { orgId, bindingIds: [binding.id] }
        let last = 0
        while (true) {
          const [claimed] = yield* claimAll(scope)
          if (claimed === undefined) break
          last = claimed.attempts
          yield* harness.elapse(TTL + 1_000)
          yield* feed.reap
        }
        const delivery = yield* feed.get(scope, (yield* feed.list(scope, { limit: 1 })).deliveries[0]!.id)
        assert.deepInclude(delivery, { status: "dead", attempts: last })
        assert.strictEqual(last, delivery.maxAttempts)
        assert.strictEqual(delivery.lastError, "claim expired before an ack")
      })))

    it.effect("retry and dead-letter: a gateway only for deliveries it claimed last; statuses that cannot move are 409", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const feed = yield* DeliveryFeed
        const { orgId, binding, lease } = yield* boundSession()
        yield* (yield* EventLog).append(lease, [reply("one")])
        const scope = { orgId, bindingIds: [binding.id] }
        const [claimed] = yield* claimAll(scope, "tok_a")
        yield* feed.ack(scope, claimed!.id, { claimToken: claimed!.claimToken, outcome: "dead", error: "chat deleted" })
        assert.instanceOf(yield* Effect.flip(feed.retry(scope, claimed!.id, "tok_other")), Forbidden)
        const retried = yield* feed.retry(scope, claimed!.id, "tok_a")
        assert.deepInclude(retried, { status: "pending", attempts: 0 })
        assert.instanceOf(yield* Effect.flip(feed.retry({ orgId }, claimed!.id)), Conflict, "a pending delivery is not retried")
        assert.instanceOf(yield* Effect.flip(feed.deadLetter(scope, claimed!.id, "x", "tok_other")), Forbidden)
        const dead = yield* feed.deadLetter({ orgId }, claimed!.id, "operator gave up")
        assert.deepInclude(dead, { status: "dead", lastError: "operator gave up" })
        assert.instanceOf(yield* Effect.flip(feed.deadLetter({ orgId }, claimed!.id, undefined)), Conflict)
      })))

    it.effect("scope: another binding's or org's delivery is NotFound and never claimed", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const feed = yield* DeliveryFeed
        const a = yield* boundSession()
        const b = yield* boundSession()
        yield* (yield* EventLog).append(a.lease, [reply("a")])
        const [delivery] = (yield* feed.list({ orgId: a.orgId }, { limit: 5 })).deliveries
        assert.instanceOf(yield* Effect.flip(feed.get({ orgId: b.orgId }, delivery!.id)), NotFound)
        assert.instanceOf(yield* Effect.flip(feed.get({ orgId: a.orgId, bindingIds: ["chb_other"] }, delivery!.id)), NotFound)
        assert.deepStrictEqual(yield* claimAll({ orgId: b.orgId, bindingIds: [b.binding.id] }), [])
        assert.deepStrictEqual(yield* claimAll({ orgId: a.orgId, bindingIds: ["chb_other"] }), [])
        assert.instanceOf(yield* Effect.flip(feed.retry({ orgId: b.orgId }, delivery!.id)), NotFound)
      })))

    it.effect("channel_deliveries_per_hour: first attempts past it stay pending until the hour ends; retries are not counted again; other orgs claim", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const feed = yield* DeliveryFeed
        const { orgId, binding, lease } = yield* boundSession()
        yield* (yield* EventLog).append(lease, [reply("one"), reply("two"), reply("three")])
        const scope = { orgId, bindingIds: [binding.id] }
        const first = yield* claimWithin(scope, 2)
        assert.strictEqual(first.deliveries.length, 2, "two first attempts fit the hour")
        assert.strictEqual(first.deferredByQuota, 1)
        const deferred = (yield* feed.list({ orgId }, { limit: 10, status: "pending" })).deliveries
        assert.strictEqual(deferred.length, 1, "the third stays pending: not lost, not dead")
        const waitMs = Date.parse(deferred[0]!.nextAttemptAt!) - Date.parse(deferred[0]!.updatedAt)
        assert.isAbove(waitMs, 0)
        assert.isAtMost(waitMs, 3_600_000, "until the clock hour ends")
        assert.deepInclude(yield* claimWithin(scope, 2), { deliveries: [], deferredByQuota: 0 }, "not due, not counted twice")

        // A failed attempt of an admitted delivery is retried past the quota: it was counted once, when first claimed.
        const failing = first.deliveries[0]!
        yield* feed.ack(scope, failing.id, { claimToken: failing.claimToken, outcome: "failed", error: "503", retryAfterMs: 1_000 })
        yield* harness.elapse(3_000)
        const retried = yield* claimWithin(scope, 2)
        assert.deepStrictEqual(retried.deliveries.map((d) => [d.id, d.attempts]), [[failing.id, 2]])

        const other = yield* boundSession()
        yield* (yield* EventLog).append(other.lease, [reply("theirs")])
        const theirs = yield* claimWithin({ orgId: other.orgId, bindingIds: [other.binding.id] }, 2)
        assert.strictEqual(theirs.deliveries.length, 1, "another org's window is its own")
      })))

    it.effect("lists newest first in keyset pages, filtered by status and binding", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const feed = yield* DeliveryFeed
        const { orgId, binding, lease } = yield* boundSession()
        const log = yield* EventLog
        for (const text of ["1", "2", "3"]) yield* log.append(lease, [reply(text)])
        const first = yield* feed.list({ orgId }, { limit: 2, channelBindingId: binding.id })
        assert.strictEqual(first.deliveries.length, 2)
        assert.isNotNull(first.nextCursor)
        const second = yield* feed.list({ orgId }, { limit: 2, cursor: first.nextCursor! })
        assert.strictEqual(second.deliveries.length, 1)
        assert.isNull(second.nextCursor)
        const texts = [...first.deliveries, ...second.deliveries].map((d) => (d.payload as { text: string }).text)
        assert.deepStrictEqual(texts, ["3", "2", "1"])
        assert.strictEqual((yield* feed.list({ orgId }, { limit: 10, status: "sent" })).deliveries.length, 0)
        // The total is of every match of the filters and scope (exact this side of EXACT_COUNT_LIMIT), not of the page.
        assert.deepStrictEqual([first.totalEstimate, second.totalEstimate], [3, 3])
        assert.strictEqual((yield* feed.list({ orgId }, { limit: 1, status: "pending" })).totalEstimate, 3)
        assert.strictEqual((yield* feed.list({ orgId }, { limit: 1, status: "sent" })).totalEstimate, 0)
        assert.strictEqual((yield* feed.list({ orgId, bindingIds: ["chb_none"] }, { limit: 1 })).totalEstimate, 0)
        assert.strictEqual((yield* feed.list({ orgId, bindingIds: [binding.id] }, { limit: 1, channelBindingId: binding.id })).totalEstimate, 3)
        assert.strictEqual((yield* feed.countsByStatus(orgId)).pending, 3)
        assert.strictEqual((yield* feed.countsByStatus(yield* newOrg)).pending, 0, "another org's are not counted")
        assert.isAtLeast((yield* feed.countsByStatus(undefined)).pending, 3)
      })))
  })
