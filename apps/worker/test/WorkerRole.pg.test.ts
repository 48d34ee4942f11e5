import { PgCommandQueue, PgEventLog, PgHeartbeats, PgLeaseStore } from "@cowork/postgres"
import { ScriptedRuntime } from "@cowork/runtime"
import { CommandQueue, EventLog, LeaseStore } from "@cowork/services"
import { Metrics, STALE_OWNER_OPERATIONS } from "@cowork/observability"
import { WorkerConfig, type WorkerSettings } from "@cowork/worker"
import * as WorkerRole from "@cowork/worker"
import { assert, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Option, Scope } from "effect"
import { SqlClient } from "effect/sql"
import {
  backdateLease,
  commandRow,
  createSession,
  enqueue,
  eventTypes
} from "../../../packages/postgres/test/support/WorkerFixtures.ts"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import { within } from "../../../test/support/Eventually.ts"
import { testScope } from "../../../test/support/TestScope.ts"
import { SilentChangeFeed } from "../../../test/support/SilentChangeFeed.ts"

const Env = Layer.mergeAll(PgLeaseStore.layer, PgCommandQueue.layer, PgEventLog.layer, PgHeartbeats.layer).pipe(
  Layer.provideMerge(Layer.merge(SilentChangeFeed, ScriptedRuntime.layer)),
  Layer.provideMerge(TestDatabase.layer())
)

/** A worker in its own scope (`testScope`: closed with the test's, whatever the outcome). */
const startWorker = (settings: Partial<WorkerSettings>) =>
  Effect.gen(function*() {
    const scope = yield* testScope
    const context = yield* Layer.buildWithScope(
      WorkerRole.layerNoDeps.pipe(Layer.provide(WorkerConfig.layerWith({ pollIntervalMs: 50, leaseTtlMs: 3_000, ...settings })), Layer.provideMerge(Metrics.layerTest("worker"))),
      scope
    )
    const metrics = Context.get(context, Metrics)
    const staleOwnerRejections = Effect.map(
      Effect.forEach(STALE_OWNER_OPERATIONS, (operation) =>
        metrics.read("open_cowork_cloud_worker_stale_owner_rejections_total", { operation })),
      (counts) => counts.reduce((a, b) => a + b, 0)
    )
    return { scope, metrics, staleOwnerRejections }
  })

const acked = (commandId: string) => Effect.map(commandRow(commandId), (row) => row.status === "acked")

it.layer(Env, { timeout: 60_000, excludeTestServices: true })("WorkerRole on Postgres", (it) => {
  it.effect("runs a prompt end to end: contiguous events, command acked, lease released, heartbeat written", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createSession("ses_e2e")
      yield* enqueue("ses_e2e", "cmd_e2e", "prompt", "hello world")
      const worker = yield* startWorker({ workerId: "worker-e2e", region: "eu-test" })
      yield* within(acked("cmd_e2e"), "command acked")
      const events = yield* eventTypes("ses_e2e")
      assert.deepStrictEqual(events.map((e) => e.sequence), events.map((_, i) => i + 1))
      assert.deepStrictEqual(events.map((e) => e.type), [
        "session.created", "prompt.submitted", "session.status",
        "assistant.message", "assistant.message", "assistant.message", "assistant.message", "session.idle"
      ])
      assert.deepStrictEqual(events.at(-1)!.payload, { commandId: "cmd_e2e", outcome: "acked" })
      assert.strictEqual(events.at(-2)!.payload.final, true)
      yield* within(
        Effect.map(sql<{ worker_id: string | null }>`SELECT worker_id FROM cloud_worker_leases WHERE session_id = 'ses_e2e'`, (rows) => rows[0]!.worker_id === null),
        "lease released"
      )
      const beats = yield* sql<{ status: string; version: string; region: string | null; capabilities: Array<string> }>`
        SELECT status, version, region, capabilities FROM cloud_worker_heartbeats WHERE worker_id = 'worker-e2e'`
      assert.deepStrictEqual(beats.map((b) => [b.status, b.region]), [["active", "eu-test"]])
      const projection = yield* sql<{ status: string }>`SELECT status FROM cloud_session_projections WHERE session_id = 'ses_e2e'`
      assert.strictEqual(projection[0]!.status, "idle")
      yield* Scope.close(worker.scope, Exit.void)
      const stopped = yield* sql<{ status: string }>`SELECT status FROM cloud_worker_heartbeats WHERE worker_id = 'worker-e2e'`
      assert.strictEqual(stopped[0]!.status, "stopped")
    }))

  it.effect("a test that fails while its worker runs still stops the worker (heartbeat stopped, nothing left running)", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const status = Effect.map(
        sql<{ status: string }>`SELECT status FROM cloud_worker_heartbeats WHERE worker_id = 'worker-failing-test'`,
        (rows) => rows[0]?.status
      )
      const failed = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
        yield* startWorker({ workerId: "worker-failing-test" })
        yield* within(Effect.map(status, (s) => s === "active"), "the worker heartbeats")
        return yield* Effect.die(new Error("an assertion failed"))
      })))
      assert.isTrue(Exit.isFailure(failed))
      assert.strictEqual(yield* status, "stopped", "the failed test's scope stopped its worker")
    }))

  it.effect("re-runs a command abandoned by a crashed worker: command.retried, and the projection drops its output", () =>
    Effect.gen(function*() {
      const leases = yield* LeaseStore
      const queue = yield* CommandQueue
      const log = yield* EventLog
      const sql = yield* SqlClient.SqlClient
      yield* createSession("ses_crash")
      yield* enqueue("ses_crash", "cmd_crash", "prompt", "again")
      const [crashed] = yield* leases.claim("worker-crashed", 1, 60_000, 3)
      Option.getOrThrow(yield* queue.next(crashed!))
      yield* log.append(crashed!, [
        { type: "session.status", payload: { status: "running", commandId: "cmd_crash" } },
        { type: "assistant.message", payload: { messageId: "m_abandoned", text: "partial", final: true }, commandId: "cmd_crash", attempt: 1 }
      ])
      yield* backdateLease("ses_crash")

      const worker = yield* startWorker({ workerId: "worker-rescue" })
      yield* within(acked("cmd_crash"), "re-run acked")
      assert.deepStrictEqual(yield* commandRow("cmd_crash"), { status: "acked", attemptCount: 1 })
      const events = yield* eventTypes("ses_crash")
      assert.deepStrictEqual(events.map((e) => e.sequence), events.map((_, i) => i + 1))
      const retried = events.find((e) => e.type === "command.retried")!
      assert.deepStrictEqual(retried.payload, { commandId: "cmd_crash", abandonedAttempt: 1, attempt: 2 })
      assert.strictEqual(events.filter((e) => e.type === "session.idle").length, 1)
      const messages = yield* sql<{ message_id: string; role: string; attempt: number | null }>`
        SELECT message_id, role, attempt FROM cloud_session_projection_messages WHERE session_id = 'ses_crash' ORDER BY sequence`
      assert.deepStrictEqual(messages.map((m) => [m.role, m.attempt]), [["user", null], ["assistant", 2]])
      assert.notInclude(messages.map((m) => m.message_id), "m_abandoned")
      yield* Scope.close(worker.scope, Exit.void)
    }))

  it.effect("a worker whose lease was taken over is refused on renewal, counts it, and writes nothing more", () =>
    Effect.gen(function*() {
      const leases = yield* LeaseStore
      const sql = yield* SqlClient.SqlClient
      yield* createSession("ses_taken")
      yield* enqueue("ses_taken", "cmd_taken", "prompt", "[[hang]] work")
      const worker = yield* startWorker({ workerId: "worker-slow", leaseTtlMs: 600 })
      yield* within(
        Effect.map(eventTypes("ses_taken"), (events) => events.some((e) => e.type === "assistant.message")),
        "the turn started"
      )
      // Another worker takes the session over (as after a long pause of this one), in ONE transaction: the stale
      // worker polls every 50 ms (and its reaper wakes it), so between a committed backdate and the thief's claim it
      // could claim the expired lease itself and leave the thief nothing.
      const [thief] = yield* sql.withTransaction(
        Effect.andThen(backdateLease("ses_taken"), leases.claim("worker-thief", 1, 60_000, 3))
      )
      assert.isDefined(thief)
      const before = yield* eventTypes("ses_taken")
      yield* within(
        Effect.map(worker.staleOwnerRejections, (n) => n >= 1),
        "the renewal is refused and counted"
      )
      const lease = yield* sql<{ worker_id: string; epoch: bigint }>`SELECT worker_id, epoch FROM cloud_worker_leases WHERE session_id = 'ses_taken'`
      assert.deepStrictEqual([lease[0]!.worker_id, Number(lease[0]!.epoch)], ["worker-thief", thief!.epoch])
      assert.deepStrictEqual(yield* eventTypes("ses_taken"), before)
      assert.deepStrictEqual(yield* commandRow("cmd_taken"), { status: "pending", attemptCount: 1 })
      yield* Scope.close(worker.scope, Exit.void)
      assert.deepStrictEqual(yield* eventTypes("ses_taken"), before, "shutdown of the stale worker writes nothing")
    }))
})
