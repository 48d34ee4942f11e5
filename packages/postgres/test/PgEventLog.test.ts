import { PgEventLog, PgHeartbeats, PgLeaseStore } from "@cowork/postgres"
import { EventLog, Heartbeats, LeaseStore } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import { createSession, enqueue } from "./support/WorkerFixtures.ts"

const Stores = Layer.mergeAll(PgLeaseStore.layer, PgEventLog.layer, PgHeartbeats.layer).pipe(
  Layer.provideMerge(TestDatabase.layer())
)

it.layer(Stores)("PgEventLog and PgHeartbeats", (it) => {
  it.effect("the owner appends contiguously; read, bounds and prune follow the log", () =>
    Effect.gen(function*() {
      const leases = yield* LeaseStore
      const log = yield* EventLog
      yield* createSession("ses_log")
      yield* enqueue("ses_log", "cmd_log")
      const [lease] = yield* leases.claim("worker-log", 1, 60_000, 3)
      const last = yield* log.append(lease!, [
        { type: "session.status", payload: { status: "running", commandId: "cmd_log" } },
        { type: "assistant.message", payload: { messageId: "m1", delta: "he", final: false }, commandId: "cmd_log", attempt: 1 }
      ])
      assert.strictEqual(last, 4)
      const events = yield* log.read("ses_log", 1, 10)
      assert.deepStrictEqual(events.map((e) => [e.sequence, e.type]), [
        [2, "prompt.submitted"], [3, "session.status"], [4, "assistant.message"]
      ])
      assert.deepStrictEqual((yield* log.read("ses_log", 0, 2)).map((e) => e.sequence), [1, 2])
      assert.deepStrictEqual(yield* log.bounds("ses_log"), { earliestSequence: 1, latestSequence: 4 })
      yield* log.prune("ses_log", 3)
      assert.deepStrictEqual(yield* log.bounds("ses_log"), { earliestSequence: 3, latestSequence: 4 })
      assert.deepStrictEqual((yield* log.read("ses_log", 0, 10)).map((e) => e.sequence), [3, 4])
    }))

  it.effect("heartbeats upsert with the database clock and report freshness", () =>
    Effect.gen(function*() {
      const heartbeats = yield* Heartbeats
      const input = {
        workerId: "worker-hb", role: "worker" as const, poolId: null, status: "active", version: "0.1.0",
        region: null, capabilities: ["prompt"], currentLoad: 0, activeWorkIds: []
      }
      yield* heartbeats.beat(input)
      yield* heartbeats.beat({ ...input, currentLoad: 2, activeWorkIds: ["ses_a", "ses_b"], region: "eu-west-1" })
      const [beat] = yield* heartbeats.list(60_000)
      assert.strictEqual(beat!.workerId, "worker-hb")
      assert.strictEqual(beat!.currentLoad, 2)
      assert.deepStrictEqual(beat!.activeWorkIds, ["ses_a", "ses_b"])
      assert.strictEqual(beat!.region, "eu-west-1")
      assert.isTrue(beat!.fresh)
      assert.isFalse((yield* heartbeats.list(-1))[0]!.fresh)
    }))
})
