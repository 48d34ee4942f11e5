import { ChangeFeed, type CommandSignal, EventLog, type Revocation, type SessionChanged, Tokens } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Queue, Stream } from "effect"
import { type ControlPlaneHarness, onFreshStore } from "./ControlPlaneHarness.ts"
import { claimOne, prompt, runnableSession } from "./ControlPlaneFixtures.ts"
import { step } from "../../../../test/support/Eventually.ts"

/**
 * Repeats `send` until `received` holds, polling every 25 ms up to a 10 s deadline: a listening connection may
 * start after the first notification, and a notification sent before it is lost by design (readers catch up by
 * keyset reads), so the contract is "delivered once the listener runs". Each `send` has its own deadline, so a hung
 * send names itself (`what`) instead of running the test into its timeout.
 */
const deliveredEventually = <A, E, R>(
  what: string,
  send: Effect.Effect<unknown, E, R>,
  queue: Queue.Queue<A>,
  matches: (a: A) => boolean
) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline) {
      yield* step(`${what}: send`, send)
      yield* Effect.sleep("25 millis")
      const got = yield* Queue.clear(queue)
      const hit = got.find(matches)
      if (hit !== undefined) return hit
    }
    return assert.fail(`${what}: never delivered`)
  })

/** Cross-process notifications: command signals and session changes reach subscribers with their payloads. */
export const changeFeedContract = <R>(harness: ControlPlaneHarness<R>) =>
  describe(`ChangeFeed contract: ${harness.name}`, () => {
    it.live("a prompt, an abort and notifyCommand signal workers; an owner's append signals the session's new tip", () =>
      onFreshStore(harness, Effect.scoped(Effect.gen(function*() {
        const feed = yield* ChangeFeed
        const signals = yield* Queue.unbounded<CommandSignal>()
        const changes = yield* Queue.unbounded<SessionChanged>()
        const commandSignals = yield* step("subscribe to command signals", feed.commandSignals)
        yield* Effect.forkScoped(Stream.runForEach(commandSignals, (s) => Queue.offer(signals, s)))
        const sessionChanges = yield* step("subscribe to session changes", feed.sessionChanges)
        yield* Effect.forkScoped(Stream.runForEach(sessionChanges, (c) => Queue.offer(changes, c)))
        const session = yield* step("create a runnable session", runnableSession())
        const prompted = yield* deliveredEventually("a prompt signals", prompt(session, "again"), signals, (s) => s.sessionId === session.sessionId)
        assert.deepStrictEqual(prompted, { kind: "prompt", sessionId: session.sessionId })
        const notified = yield* deliveredEventually("notifyCommand signals", feed.notifyCommand({ kind: "abort", sessionId: "ses_x" }), signals, (s) => s.sessionId === "ses_x")
        assert.deepStrictEqual(notified, { kind: "abort", sessionId: "ses_x" })
        const lease = yield* step("claim the session", claimOne("w1", session.sessionId))
        const log = yield* EventLog
        const changed = yield* deliveredEventually(
          "an append signals the new tip",
          log.append(lease, [{ type: "tool.call", payload: {} }]),
          changes,
          (c) => c.sessionId === session.sessionId && c.lastSequence > 3
        )
        assert.strictEqual(changed.orgId, session.orgId)
        const bounds = yield* step("read the log's bounds", log.bounds(session.sessionId))
        assert.isAtMost(changed.lastSequence, bounds.latestSequence, "a tip the log reached")
      }))))

    it.live("a revoked token is announced to every subscriber, with its id", () =>
      onFreshStore(harness, Effect.scoped(Effect.gen(function*() {
        const feed = yield* ChangeFeed
        const tokens = yield* Tokens
        const first = yield* Queue.unbounded<Revocation>()
        const second = yield* Queue.unbounded<Revocation>()
        const firstRevocations = yield* step("subscribe to revocations (first)", feed.revocations)
        yield* Effect.forkScoped(Stream.runForEach(firstRevocations, (r) => Queue.offer(first, r)))
        const secondRevocations = yield* step("subscribe to revocations (second)", feed.revocations)
        yield* Effect.forkScoped(Stream.runForEach(secondRevocations, (r) => Queue.offer(second, r)))
        const { orgId } = yield* step("create an org", tokens.createOrg("revocations"))
        const issued = yield* step("issue a token", Effect.orDie(tokens.issue({ orgId, name: "ci", scopes: ["web"] })))
        const announced = yield* deliveredEventually(
          "a revocation is announced",
          Effect.orDie(tokens.revoke(issued.tokenId, { orgId })),
          first,
          (r) => r.id === issued.tokenId
        )
        assert.deepStrictEqual(announced, { kind: "token", id: issued.tokenId })
        const other = yield* step(
          "the second subscriber hears the revocation",
          Queue.take(second).pipe(Effect.repeat({ until: (r) => r.id === issued.tokenId }))
        )
        assert.strictEqual(other.kind, "token")
      }))))
  })
