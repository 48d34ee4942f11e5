import { CommandQueue, EventLog, LeaseStore } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { type ControlPlaneHarness, onFreshStore } from "./ControlPlaneHarness.ts"
import { claim, claimOne, expectStale, MAX_ATTEMPTS, prompt, runnableSession, TTL_MS } from "./ControlPlaneFixtures.ts"

/**
 * What every LeaseStore does (fencing, expiry, takeover, release, the reaper), run against the memory store and
 * Postgres. Worker / pool / credential gating and capacity are in LeaseGatingContract.
 */
export const leaseStoreContract = <R>(harness: ControlPlaneHarness<R>) =>
  describe(`LeaseStore contract: ${harness.name}`, () => {
    it.effect("claims only runnable sessions, once, with a new epoch, the org and the checkpoint version", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const runnable = yield* runnableSession()
        const other = yield* runnableSession()
        yield* runnableSession()
        assert.deepStrictEqual(yield* claim("w1", 0), [], "a zero limit claims nothing")
        const first = yield* claim("w1", 2)
        assert.strictEqual(first.length, 2, "the limit holds")
        const rest = yield* claim("w2", 10)
        assert.strictEqual(rest.length, 1, "a live lease is not claimable")
        assert.deepStrictEqual(yield* claim("w3", 10), [], "nothing left")
        const all = [...first, ...rest]
        const lease = all.find((l) => l.sessionId === runnable.sessionId)!
        assert.deepInclude(lease, { epoch: 1, checkpointVersion: 0, orgId: runnable.orgId })
        assert.isDefined(all.find((l) => l.sessionId === other.sessionId))
      })))

    it.effect("an idle session (no pending command) is not claimed", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const { sessionId } = yield* runnableSession()
        const lease = yield* claimOne("w1", sessionId)
        const command = Option.getOrThrow(yield* (yield* CommandQueue).next(lease))
        yield* (yield* EventLog).append(lease, [{ type: "session.idle", payload: {} }], { commandId: command.id, outcome: "acked" })
        assert.isTrue(yield* (yield* LeaseStore).releaseIfIdle(lease))
        assert.deepStrictEqual(yield* claim("w2"), [])
      })))

    it.effect("renewal keeps a lease past its TTL; expiry lets another worker take over with the next epoch", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const leases = yield* LeaseStore
        const { sessionId } = yield* runnableSession()
        const first = yield* claimOne("w1", sessionId)
        yield* harness.elapse(TTL_MS - 1_000)
        yield* leases.renew(first, TTL_MS)
        yield* harness.elapse(TTL_MS - 1_000)
        assert.deepStrictEqual(yield* claim("w2"), [], "renewed: still live")
        yield* harness.elapse(2_000)
        const second = yield* claimOne("w2", sessionId)
        assert.strictEqual(second.epoch, first.epoch + 1)
        yield* expectStale(leases.renew(first, TTL_MS), first, "renew")
        yield* expectStale(leases.releaseIfIdle(first), first, "release")
        yield* expectStale(leases.expire(first), first, "expire")
        yield* leases.renew(second, TTL_MS)
      })))

    it.effect("a takeover re-runs the abandoned command as its next attempt; past maxAttempts it is dead", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const queue = yield* CommandQueue
        const { sessionId, commandId } = yield* runnableSession()
        for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
          const lease = yield* claimOne(`w${attempt}`, sessionId)
          const command = Option.getOrThrow(yield* queue.next(lease))
          assert.deepStrictEqual([command.id, command.attempt, command.abandonedAttempts], [commandId, attempt, attempt - 1])
          yield* harness.elapse(TTL_MS)
        }
        const last = yield* claimOne("w-last", sessionId)
        assert.isTrue(Option.isNone(yield* queue.next(last)), "dead after maxAttempts abandoned attempts")
      })))

    it.effect("a command whose attempts run out is dead-lettered on its log as an operator's is (then session.idle, outcome dead), by the reaper or a takeover", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const queue = yield* CommandQueue
        const log = yield* EventLog
        const leases = yield* LeaseStore
        const deadPath = (reaper: boolean) =>
          Effect.gen(function*() {
            const { sessionId, commandId } = yield* runnableSession()
            for (let attempt = 1; attempt < MAX_ATTEMPTS; attempt++) {
              yield* queue.next(yield* claimOne(`w${attempt}-${String(reaper)}`, sessionId))
              yield* harness.elapse(TTL_MS)
            }
            const lastLease = yield* claimOne(`w-last-${String(reaper)}`, sessionId)
            yield* queue.next(lastLease)
            yield* log.append(lastLease, [{ type: "session.status", payload: { status: "running", commandId }, commandId }])
            const before = (yield* log.read(sessionId, 0, 100)).length
            yield* harness.elapse(TTL_MS)
            if (reaper) {
              assert.deepInclude(yield* leases.reapExpired({ batchSize: 10, drainCap: 10, maxAttempts: MAX_ATTEMPTS }), { dead: 1 })
            } else {
              yield* claimOne("w-takeover", sessionId)
            }
            const after = (yield* log.read(sessionId, 0, 100)).slice(before)
            const reason = `attempt ${MAX_ATTEMPTS} abandoned by worker w-last-${String(reaper)}`
            assert.deepStrictEqual(after.map((event) => [event.sequence, event.type, event.payload]), [
              [before + 1, "command.dead_lettered", { commandId, kind: "prompt", reason, cause: "attempts_exhausted", attempts: MAX_ATTEMPTS }],
              [before + 2, "session.idle", { outcome: "dead", commandId, attempts: MAX_ATTEMPTS, reason }]
            ])
          })
        yield* deadPath(true)
        yield* deadPath(false)
      })))

    it.effect("releaseIfIdle keeps the lease while a command is pending; expire frees it for another worker at once", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const leases = yield* LeaseStore
        const session = yield* runnableSession()
        const lease = yield* claimOne("w1", session.sessionId)
        assert.isFalse(yield* leases.releaseIfIdle(lease), "a pending command keeps the lease")
        yield* leases.renew(lease, TTL_MS)
        yield* leases.expire(lease)
        const next = yield* claimOne("w2", session.sessionId)
        assert.strictEqual(next.epoch, lease.epoch + 1)
        yield* expectStale(leases.expire(lease), lease, "expire")
        yield* prompt(session, "more")
        assert.isFalse(yield* leases.releaseIfIdle(next))
      })))

    it.effect("the reaper recovers expired leases in batches up to its drain cap, and never a released lease", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const leases = yield* LeaseStore
        const queue = yield* CommandQueue
        for (let i = 0; i < 7; i++) yield* runnableSession()
        for (const lease of yield* claim("w1", 7)) yield* queue.next(lease)
        const early = yield* leases.reapExpired({ batchSize: 2, drainCap: 5, maxAttempts: 2 })
        assert.deepInclude(early, { reaped: 0, capHit: false, requeued: 0, dead: 0 }, "nothing expired yet")
        assert.isTrue(early.nextExpiryInMs !== null && early.nextExpiryInMs > 0 && early.nextExpiryInMs <= TTL_MS, "the reaper's next wake is the first expiry")
        yield* harness.elapse(TTL_MS)
        const ticks = [
          yield* leases.reapExpired({ batchSize: 2, drainCap: 5, maxAttempts: 2 }),
          yield* leases.reapExpired({ batchSize: 2, drainCap: 5, maxAttempts: 2 })
        ]
        assert.deepStrictEqual(ticks, [
          { reaped: 5, capHit: true, requeued: 5, dead: 0, nextExpiryInMs: null },
          { reaped: 2, capHit: false, requeued: 2, dead: 0, nextExpiryInMs: null }
        ], "no lease held any more: nothing to wake for")
        const retaken = yield* claim("w2", 7)
        assert.strictEqual(retaken.length, 7, "requeued sessions are runnable again")
        assert.isTrue(retaken.every((lease) => lease.epoch === 3), "claim, reap and claim each bumped the epoch")
        for (const lease of retaken) yield* queue.next(lease)
        yield* harness.elapse(TTL_MS)
        assert.deepInclude(yield* leases.reapExpired({ batchSize: 10, drainCap: 10, maxAttempts: 2 }), { reaped: 7, dead: 7, requeued: 0 })
        assert.deepStrictEqual(yield* claim("w3", 7), [], "dead commands are not runnable")
      })))
  })

