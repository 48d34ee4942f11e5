import { turnOpeningEvents } from "@cowork/domain"
import { CommandQueue, EventLog, LeaseStore, Projections, SessionStore } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { type ControlPlaneHarness, onFreshStore } from "./ControlPlaneHarness.ts"
import { claimOne, expectStale, prompt, runnableSession, TTL_MS } from "./ControlPlaneFixtures.ts"

/** The events after `after`, as drafts are written (type, payload), for comparing with `turnOpeningEvents`. */
const eventsAfter = (sessionId: string, after: number) =>
  Effect.map(Effect.flatMap(Effect.service(EventLog), (log) => log.read(sessionId, after, 100)), (events) =>
    events.map((e) => ({ type: e.type, payload: e.payload })))

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

    it.effect("start is next plus a prompt's opening events in the same write; a retry opens with command.retried and drops the abandoned attempt's output", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const queue = yield* CommandQueue
        const log = yield* EventLog
        const leases = yield* LeaseStore
        const sessions = yield* SessionStore
        const session = yield* runnableSession()
        const lease = yield* claimOne("w1", session.sessionId)
        const tip = (yield* log.bounds(session.sessionId)).latestSequence
        const first = Option.getOrThrow(yield* queue.start(lease))
        assert.deepInclude(first, { id: session.commandId, kind: "prompt", attempt: 1, abandonedAttempts: 0 })
        assert.deepStrictEqual(yield* eventsAfter(session.sessionId, tip), turnOpeningEvents(first).map((d) => ({ type: d.type, payload: d.payload })))
        assert.strictEqual((yield* sessions.get(session.orgId, session.sessionId)).status, "running")
        yield* log.append(lease, [{ type: "assistant.message", payload: { messageId: "m1", text: "partial", final: true }, commandId: first.id, attempt: 1 }])

        // The owner is lost mid-command: the next owner's start retries it.
        yield* leases.expire(lease)
        const taken = yield* claimOne("w2", session.sessionId)
        const before = (yield* log.bounds(session.sessionId)).latestSequence
        const retried = Option.getOrThrow(yield* queue.start(taken))
        assert.deepInclude(retried, { id: session.commandId, attempt: 2, abandonedAttempts: 1 })
        const opening = yield* eventsAfter(session.sessionId, before)
        assert.deepStrictEqual(opening, turnOpeningEvents(retried).map((d) => ({ type: d.type, payload: d.payload })))
        assert.deepStrictEqual(opening.map((e) => e.type), ["command.retried", "session.status"])
        const view = yield* sessions.view(session.orgId, session.sessionId)
        assert.deepStrictEqual(view.messages.map((m) => m.role), ["user"], "the abandoned attempt's message is dropped")
        assert.deepInclude(yield* (yield* Projections).status(session.sessionId), { consistent: true, lagEvents: 0 })

        // An abort opens nothing; an empty mailbox starts nothing; a lost lease starts nothing.
        yield* log.append(taken, [{ type: "session.idle", payload: {} }], { commandId: retried.id, outcome: "acked" })
        yield* sessions.abort(session.orgId, session.sessionId)
        const quiet = (yield* log.bounds(session.sessionId)).latestSequence
        assert.strictEqual(Option.getOrThrow(yield* queue.start(taken)).kind, "abort")
        assert.strictEqual((yield* log.bounds(session.sessionId)).latestSequence, quiet, "no event for an abort's start")
        assert.isTrue(Option.isNone(yield* queue.start(taken)))
        yield* leases.expire(taken)
        yield* expectStale(queue.start(taken), taken, "next")
        assert.strictEqual((yield* log.bounds(session.sessionId)).latestSequence, quiet)
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
