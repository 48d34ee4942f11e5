import { CommandQueue, EventLog, LeaseStore, Projections, SessionStore } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { type ControlPlaneHarness, onFreshStore } from "./ControlPlaneHarness.ts"
import { claimOne, expectStale, newSession, prompt, runnableSession } from "./ControlPlaneFixtures.ts"

const message = (messageId: string, text: string, commandId: string, attempt: number) =>
  ({ type: "assistant.message", payload: { messageId, text, final: true }, commandId, attempt }) as const

/** The fenced append-only log and the projection it feeds, with the operator's projection view. */
export const eventLogContract = <R>(harness: ControlPlaneHarness<R>) =>
  describe(`EventLog + Projections contract: ${harness.name}`, () => {
    it.effect("appends get contiguous sequences; reads are ordered, after a cursor, bounded", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const log = yield* EventLog
        const session = yield* runnableSession()
        const lease = yield* claimOne("w1", session.sessionId)
        assert.strictEqual(yield* log.append(lease, [{ type: "session.status", payload: { status: "running" } }]), 3)
        assert.strictEqual(yield* log.append(lease, [{ type: "tool.call", payload: {} }, { type: "tool.call", payload: {} }]), 5)
        const all = yield* log.read(session.sessionId, 0, 100)
        assert.deepStrictEqual(all.map((e) => [e.sequence, e.type]), [
          [1, "session.created"], [2, "prompt.submitted"], [3, "session.status"], [4, "tool.call"], [5, "tool.call"]
        ])
        assert.strictEqual(new Set(all.map((e) => e.eventId)).size, 5)
        assert.deepStrictEqual((yield* log.read(session.sessionId, 2, 2)).map((e) => e.sequence), [3, 4])
        assert.deepStrictEqual(yield* log.bounds(session.sessionId), { earliestSequence: 1, latestSequence: 5 })
        const tips = yield* log.latestSequences([session.sessionId, "ses_unknown"])
        assert.deepStrictEqual([...tips], [[session.sessionId, 5]], "unknown sessions are absent")
      })))

    it.effect("a stale owner's append, completion or checkpoint ack is refused and writes nothing", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const log = yield* EventLog
        const session = yield* runnableSession()
        const lease = yield* claimOne("w1", session.sessionId)
        const command = Option.getOrThrow(yield* (yield* CommandQueue).next(lease))
        yield* expectStale(
          log.append(lease, [{ type: "session.idle", payload: {} }], { commandId: "cmd_other", outcome: "acked" }),
          lease,
          "complete"
        )
        yield* (yield* LeaseStore).expire(lease)
        const idle = [{ type: "session.idle", payload: {} }] as const
        yield* expectStale(log.append(lease, idle), lease, "append")
        yield* expectStale(log.append(lease, idle, { commandId: command.id, outcome: "acked" }), lease, "complete")
        yield* expectStale(log.append(lease, idle, { commandId: command.id, outcome: "acked", checkpointVersion: 1 }), lease, "checkpoint")
        yield* expectStale(log.append({ ...lease, sessionId: "ses_unknown" }, idle), { ...lease, sessionId: "ses_unknown" }, "append")
        assert.deepStrictEqual(yield* log.bounds(session.sessionId), { earliestSequence: 1, latestSequence: 2 })
      })))

    it.effect("a completion acks the command once and moves the lease's checkpoint version in the same write", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const log = yield* EventLog
        const queue = yield* CommandQueue
        const leases = yield* LeaseStore
        const session = yield* runnableSession()
        const lease = yield* claimOne("w1", session.sessionId)
        const command = Option.getOrThrow(yield* queue.next(lease))
        yield* log.append(lease, [message("m1", "done", command.id, 1), { type: "session.idle", payload: {} }], {
          commandId: command.id,
          outcome: "acked",
          checkpointVersion: 7
        })
        yield* expectStale(
          log.append(lease, [{ type: "session.idle", payload: {} }], { commandId: command.id, outcome: "acked" }),
          lease,
          "complete"
        )
        yield* prompt(session, "again")
        yield* leases.expire(lease)
        const next = yield* claimOne("w2", session.sessionId)
        assert.strictEqual(next.checkpointVersion, 7)
        assert.notStrictEqual(Option.getOrThrow(yield* queue.next(next)).id, command.id, "an acked command never re-runs")
      })))

    it.effect("close acks the command and releases the lease when nothing is pending; with more pending it keeps it", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const log = yield* EventLog
        const queue = yield* CommandQueue
        const leases = yield* LeaseStore
        const session = yield* runnableSession()
        yield* prompt(session, "second")
        const lease = yield* claimOne("w1", session.sessionId)
        const first = Option.getOrThrow(yield* queue.start(lease))
        const kept = yield* log.close(lease, [{ type: "session.idle", payload: {} }], { commandId: first.id, outcome: "acked" })
        assert.isFalse(kept.released, "another command is pending")
        assert.strictEqual(kept.lastSequence, (yield* log.bounds(session.sessionId)).latestSequence)
        const second = Option.getOrThrow(yield* queue.start(lease))
        yield* expectStale(log.close(lease, [], { commandId: first.id, outcome: "acked" }), lease, "complete")
        const done = yield* log.close(lease, [{ type: "session.idle", payload: {} }], { commandId: second.id, outcome: "acked", checkpointVersion: 3 })
        assert.isTrue(done.released)
        yield* expectStale(leases.renew(lease, 1_000), lease, "renew")
        yield* expectStale(log.close(lease, [], { commandId: second.id, outcome: "acked" }), lease, "complete")
        yield* prompt(session, "third")
        const again = yield* claimOne("w2", session.sessionId)
        assert.strictEqual(again.checkpointVersion, 3, "the checkpoint ack rode in the releasing write")
      })))

    it.effect("the projection follows the status rule and drops an abandoned attempt's output; Projections agrees with a replay", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const log = yield* EventLog
        const sessions = yield* SessionStore
        const projections = yield* Projections
        const session = yield* runnableSession()
        const lease = yield* claimOne("w1", session.sessionId)
        yield* log.append(lease, [{ type: "session.status", payload: { status: "running" } }, message("m1", "partial", session.commandId, 1)])
        yield* prompt(session, "queued behind")
        assert.strictEqual((yield* sessions.get(session.orgId, session.sessionId)).status, "running", "queued does not demote running")
        yield* log.append(lease, [
          { type: "command.retried", payload: { commandId: session.commandId, abandonedAttempt: 1, attempt: 2 } },
          message("m2", "final", session.commandId, 2),
          { type: "session.idle", payload: {} }
        ])
        const view = yield* sessions.view(session.orgId, session.sessionId)
        assert.strictEqual(view.status, "idle")
        assert.deepStrictEqual(view.messages.map((m) => [m.role, m.messageId, m.attempt]), [
          ["user", session.commandId, null], ["user", view.messages[1]!.messageId, null], ["assistant", "m2", 2]
        ])
        yield* log.append(lease, [
          { type: "permission.requested", payload: { permissionId: "per_1", permission: "edit" }, commandId: session.commandId, attempt: 2 }
        ])
        assert.deepInclude(yield* projections.status(session.sessionId), { consistent: true }, "a pending ask agrees with the replay")
        yield* log.append(lease, [{ type: "session.aborted", payload: {} }])
        yield* log.append(lease, [{ type: "session.status", payload: { status: "running" } }])
        assert.strictEqual((yield* sessions.get(session.orgId, session.sessionId)).status, "aborted", "aborted is final")
        const status = yield* projections.status(session.sessionId)
        assert.deepInclude(status, { status: "aborted", expectedStatus: "aborted", lagEvents: 0, consistent: true, messageRows: 3 })
        assert.deepInclude(yield* projections.repair(session.sessionId), { changed: false })
        assert.strictEqual(yield* projections.maxLag, 0)
        assert.strictEqual((yield* Effect.flip(projections.status("ses_unknown")))._tag, "NotFound")
        assert.strictEqual((yield* Effect.flip(projections.repair("ses_unknown")))._tag, "NotFound")
      })))

    it.effect("prune drops old events and raises the earliest sequence; an unknown session reads empty", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const log = yield* EventLog
        const { sessionId } = yield* newSession()
        yield* log.prune(sessionId, 1)
        assert.deepStrictEqual(yield* log.bounds(sessionId), { earliestSequence: 1, latestSequence: 1 })
        assert.strictEqual((yield* log.read(sessionId, 0, 10)).length, 1)
        yield* log.prune(sessionId, 5)
        assert.deepStrictEqual(yield* log.bounds(sessionId), { earliestSequence: 2, latestSequence: 1 }, "never past the tip + 1")
        assert.deepStrictEqual(yield* log.read(sessionId, 0, 10), [])
        assert.deepStrictEqual(yield* log.read("ses_unknown", 0, 10), [])
        assert.deepStrictEqual(yield* log.bounds("ses_unknown"), { earliestSequence: 1, latestSequence: 0 })
        yield* log.prune("ses_unknown", 3)
      })))

    it.effect("changedSince lists the orgs' sessions whose log grew since a time, with their tips", () =>
      onFreshStore(harness, Effect.gen(function*() {
        const log = yield* EventLog
        const sessions = yield* SessionStore
        const quiet = yield* newSession()
        const other = yield* newSession()
        yield* harness.elapse(60_000)
        const busy = yield* newSession(quiet.orgId)
        yield* prompt(busy)
        yield* prompt(other)
        // The store's own clock: the busy session's last change.
        const since = Date.parse((yield* sessions.get(busy.orgId, busy.sessionId)).updatedAt) - 1_000
        assert.deepStrictEqual(yield* log.changedSince([quiet.orgId], since, 10), [
          { orgId: quiet.orgId, sessionId: busy.sessionId, lastSequence: 2 }
        ], "only the org's sessions that changed since then")
        assert.strictEqual((yield* log.changedSince([quiet.orgId, other.orgId], since, 10)).length, 2)
        assert.strictEqual((yield* log.changedSince([quiet.orgId, other.orgId], since, 1)).length, 1, "bounded")
        assert.deepStrictEqual(yield* log.changedSince([], since, 10), [])
      })))
  })
