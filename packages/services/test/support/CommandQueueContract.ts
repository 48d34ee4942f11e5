import { CommandQueue, LeaseStore } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { type ControlPlaneHarness, onFreshStore } from "./ControlPlaneHarness.ts"
import { claimOne, expectStale, prompt, runnableSession, TTL_MS } from "./ControlPlaneFixtures.ts"

/** The session mailbox as its owner sees it: order, fencing, the error note, the bounded backlog. */
export const commandQueueContract = <R>(harness: ControlPlaneHarness<R>) =>
  describe(`CommandQueue contract: ${harness.name}`, () => {
    it.effect("next hands out pending commands oldest first, each once, under the live lease only", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const queue = yield* CommandQueue
        const session = yield* runnableSession()
        const second = yield* prompt(session, "second")
        const lease = yield* claimOne("w1", session.sessionId)
        const first = Option.getOrThrow(yield* queue.next(lease))
        assert.deepInclude(first, { id: session.commandId, sessionId: session.sessionId, kind: "prompt", attempt: 1, abandonedAttempts: 0 })
        assert.deepStrictEqual(first.payload, { text: "hi" })
        assert.strictEqual(Option.getOrThrow(yield* queue.next(lease)).id, second)
        assert.isTrue(Option.isNone(yield* queue.next(lease)), "empty mailbox")
        yield* (yield* LeaseStore).expire(lease)
        yield* expectStale(queue.next(lease), lease, "next")
        yield* expectStale(queue.noteError(lease, "x"), lease, "note_error")
        yield* expectStale(queue.next({ ...lease, sessionId: "ses_unknown" }), { ...lease, sessionId: "ses_unknown" }, "next")
      })))

    it.effect("noteError marks the oldest pending command without starting it", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const queue = yield* CommandQueue
        const session = yield* runnableSession()
        const lease = yield* claimOne("w1", session.sessionId)
        assert.deepStrictEqual(yield* queue.noteError(lease, "restore failed"), Option.some(session.commandId))
        const command = Option.getOrThrow(yield* queue.next(lease))
        assert.deepStrictEqual([command.id, command.attempt], [session.commandId, 1], "still pending, no attempt spent")
        assert.isTrue(Option.isNone(yield* queue.noteError(lease, "nothing pending")))
      })))

    it.effect("the backlog counts pending commands up to its limit and ages the oldest by the store's clock", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const queue = yield* CommandQueue
        assert.deepStrictEqual(yield* queue.backlog(10), { depthEstimate: 0, capped: false, oldestAgeMs: 0 })
        const session = yield* runnableSession()
        yield* prompt(session, "2")
        yield* prompt(session, "3")
        yield* harness.elapse(5_000)
        const capped = yield* queue.backlog(2)
        assert.deepInclude(capped, { depthEstimate: 2, capped: true })
        assert.isAtLeast(capped.oldestAgeMs, 5_000)
        assert.isBelow(capped.oldestAgeMs, 5_000 + TTL_MS)
        const lease = yield* claimOne("w1", session.sessionId)
        yield* queue.next(lease)
        assert.deepInclude(yield* queue.backlog(10), { depthEstimate: 2, capped: false }, "a running command is not backlog")
        yield* runnableSession()
        assert.deepInclude(yield* queue.backlog(10), { depthEstimate: 3 })
        assert.deepInclude(yield* queue.backlog(10, session.orgId), { depthEstimate: 2 }, "an org's view counts only its own")
      })))
  })
