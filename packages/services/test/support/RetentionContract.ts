import { CommandQueue, EventLog, LeaseStore, retentionPass } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { type ControlPlaneHarness, onFreshStore } from "./ControlPlaneHarness.ts"
import { claim, claimOne, newOrg, newSession, prompt } from "./ControlPlaneFixtures.ts"

const DAY = 24 * 3_600_000

/** One prompt worked off to `outcome` through the worker's path (claim, start, close). */
const workOff = (session: { readonly sessionId: string; readonly orgId: string }, outcome: "acked" | "failed") =>
  Effect.gen(function*() {
    yield* prompt(session)
    // Only this session is held: any other runnable one is let go at once.
    const claimed = yield* claim("w-retention", 100)
    for (const other of claimed) if (other.sessionId !== session.sessionId) yield* (yield* LeaseStore).expire(other)
    const lease = claimed.find((l) => l.sessionId === session.sessionId)!
    const command = Option.getOrThrow(yield* (yield* CommandQueue).start(lease))
    const owner = { commandId: command.id, attempt: command.attempt }
    const closed = yield* (yield* EventLog).close(lease, [
      { type: "assistant.message", payload: { messageId: `msg_${command.id}`, text: "done", final: true }, ...owner },
      { type: "session.idle", payload: { commandId: command.id, outcome }, ...owner }
    ], { commandId: command.id, outcome })
    assert.isTrue(closed.released)
  })

/** Retention of commands and events by age: what it removes, what it never removes, and its tenant scope. */
export const retentionContract = <R>(harness: ControlPlaneHarness<R>) =>
  describe(`Retention contract: ${harness.name}`, () => {
    it.effect("removes old acked commands and old projected events, never open or failed commands, only the org's sessions", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const log = yield* EventLog
        const orgA = yield* newOrg
        const open = yield* newSession(orgA)
        const busy = yield* newSession(orgA)
        const other = yield* newSession()
        yield* workOff(open, "acked")
        yield* workOff(open, "failed")
        const stillPending = yield* prompt(open)
        yield* workOff(busy, "acked")
        yield* workOff(other, "acked")
        const openTip = (yield* log.bounds(open.sessionId)).latestSequence
        const busyOldTip = (yield* log.bounds(busy.sessionId)).latestSequence
        const otherTip = (yield* log.bounds(other.sessionId)).latestSequence

        yield* harness.elapse(10 * DAY)
        yield* workOff(busy, "acked")
        const busyTip = (yield* log.bounds(busy.sessionId)).latestSequence
        const week = { commandsOlderThanMs: 7 * DAY, eventsOlderThanMs: 7 * DAY }

        const first = yield* retentionPass({ ...week, orgId: orgA }, 1)
        assert.deepStrictEqual(first, {
          batches: 3,
          sessions: 2,
          commandsDeleted: 2,
          eventsDeleted: openTip + busyOldTip
        }, "one acked command per session of the org; every event of the open session, the old prefix of the busy one")
        assert.deepStrictEqual(yield* log.bounds(open.sessionId), { earliestSequence: openTip + 1, latestSequence: openTip })
        assert.deepStrictEqual(yield* log.read(open.sessionId, 0, 100), [])
        assert.deepStrictEqual(yield* log.bounds(busy.sessionId), { earliestSequence: busyOldTip + 1, latestSequence: busyTip })
        assert.deepStrictEqual(
          (yield* log.read(busy.sessionId, 0, 100)).map((e) => e.sequence),
          Array.from({ length: busyTip - busyOldTip }, (_, i) => busyOldTip + 1 + i),
          "the recent events are kept"
        )
        assert.deepStrictEqual(yield* log.bounds(other.sessionId), { earliestSequence: 1, latestSequence: otherTip }, "another org's log is untouched")

        // The old pending prompt survived and still runs.
        const lease = yield* claimOne("w-after", open.sessionId)
        assert.strictEqual(Option.getOrThrow(yield* (yield* CommandQueue).next(lease)).id, stillPending)
        yield* (yield* LeaseStore).expire(lease)

        const everyOrg = yield* retentionPass(week, 100)
        assert.deepStrictEqual(everyOrg, { batches: 1, sessions: 3, commandsDeleted: 1, eventsDeleted: otherTip })
        assert.deepStrictEqual(yield* retentionPass(week, 100), { batches: 1, sessions: 3, commandsDeleted: 0, eventsDeleted: 0 }, "a second pass finds nothing")
        assert.deepStrictEqual(yield* retentionPass({}, 100), { batches: 1, sessions: 3, commandsDeleted: 0, eventsDeleted: 0 }, "no ages: keep everything")
      })))
  })
