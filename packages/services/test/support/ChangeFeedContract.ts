import { ChangeFeed, type CommandSignal, EventLog, type Revocation, type SessionChanged, Tokens } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Queue, Stream } from "effect"
import { type ControlPlaneHarness, onFreshStore } from "./ControlPlaneHarness.ts"
import { claimOne, prompt, runnableSession } from "./ControlPlaneFixtures.ts"

/**
 * Repeats `send` until `received` holds, polling every 25 ms up to a 10 s deadline: a listening connection may
 * start after the first notification, and a notification sent before it is lost by design (readers catch up by
 * keyset reads), so the contract is "delivered once the listener runs".
 */
const deliveredEventually = <A, E, R>(send: Effect.Effect<unknown, E, R>, queue: Queue.Queue<A>, matches: (a: A) => boolean) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline) {
      yield* send
      yield* Effect.sleep("25 millis")
      const got = yield* Queue.clear(queue)
      const hit = got.find(matches)
      if (hit !== undefined) return hit
    }
    return assert.fail("never delivered")
  })

/** Cross-process notifications: command signals and session changes reach subscribers with their payloads. */
export const changeFeedContract = <R>(harness: ControlPlaneHarness<R>) =>
  describe(`ChangeFeed contract: ${harness.name}`, () => {
    it.live("a prompt, an abort and notifyCommand signal workers; an owner's append signals the session's new tip", () =>
      onFreshStore(harness, Effect.scoped(Effect.gen(function*() {
        const feed = yield* ChangeFeed
        const signals = yield* Queue.unbounded<CommandSignal>()
        const changes = yield* Queue.unbounded<SessionChanged>()
        yield* Effect.forkScoped(Stream.runForEach(yield* feed.commandSignals, (s) => Queue.offer(signals, s)))
        yield* Effect.forkScoped(Stream.runForEach(yield* feed.sessionChanges, (c) => Queue.offer(changes, c)))
        const session = yield* runnableSession()
        const prompted = yield* deliveredEventually(prompt(session, "again"), signals, (s) => s.sessionId === session.sessionId)
        assert.deepStrictEqual(prompted, { kind: "prompt", sessionId: session.sessionId })
        const notified = yield* deliveredEventually(feed.notifyCommand({ kind: "abort", sessionId: "ses_x" }), signals, (s) => s.sessionId === "ses_x")
        assert.deepStrictEqual(notified, { kind: "abort", sessionId: "ses_x" })
        const lease = yield* claimOne("w1", session.sessionId)
        const log = yield* EventLog
        const changed = yield* deliveredEventually(
          log.append(lease, [{ type: "tool.call", payload: {} }]),
          changes,
          (c) => c.sessionId === session.sessionId && c.lastSequence > 3
        )
        assert.strictEqual(changed.orgId, session.orgId)
        assert.isAtMost(changed.lastSequence, (yield* log.bounds(session.sessionId)).latestSequence, "a tip the log reached")
      }))))

    it.live("a revoked token is announced to every subscriber, with its id", () =>
      onFreshStore(harness, Effect.scoped(Effect.gen(function*() {
        const feed = yield* ChangeFeed
        const tokens = yield* Tokens
        const first = yield* Queue.unbounded<Revocation>()
        const second = yield* Queue.unbounded<Revocation>()
        yield* Effect.forkScoped(Stream.runForEach(yield* feed.revocations, (r) => Queue.offer(first, r)))
        yield* Effect.forkScoped(Stream.runForEach(yield* feed.revocations, (r) => Queue.offer(second, r)))
        const { orgId } = yield* tokens.createOrg("revocations")
        const issued = yield* Effect.orDie(tokens.issue({ orgId, name: "ci", scopes: ["web"] }))
        const announced = yield* deliveredEventually(
          Effect.orDie(tokens.revoke(issued.tokenId, { orgId })),
          first,
          (r) => r.id === issued.tokenId
        )
        assert.deepStrictEqual(announced, { kind: "token", id: issued.tokenId })
        const other = yield* Queue.take(second).pipe(Effect.repeat({ until: (r) => r.id === issued.tokenId }))
        assert.strictEqual(other.kind, "token")
      }))))
  })
