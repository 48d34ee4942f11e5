import { PgCommandQueue, PgEventLog, PgHeartbeats, PgLeaseStore } from "@cowork/postgres"
import { Metrics } from "@cowork/observability"
import { ScriptedRuntime } from "@cowork/runtime"
import { LocalKeyFileSecretAdapter } from "@cowork/secrets"
import { ObjectStore } from "@cowork/services"
import { CheckpointStore, FaultyObjectStore } from "@cowork/storage"
import { RestoreRetryConfig, WorkerConfig } from "@cowork/worker"
import * as WorkerRole from "@cowork/worker"
import { assert, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { commandRow, createSession, enqueue, eventTypes } from "../../../packages/postgres/test/support/WorkerFixtures.ts"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import { within } from "../../../test/support/Eventually.ts"
import { testScope } from "../../../test/support/TestScope.ts"
import { SilentChangeFeed } from "../../../test/support/SilentChangeFeed.ts"

const keyFile = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-checkpoint-key-")), "secret.key")

const Storage = CheckpointStore.layer.pipe(
  Layer.provideMerge(FaultyObjectStore.layer),
  Layer.provide(ObjectStore.layerMemory),
  Layer.provideMerge(LocalKeyFileSecretAdapter.layer(keyFile))
)

const Env = Layer.mergeAll(PgLeaseStore.layer, PgCommandQueue.layer, PgEventLog.layer, PgHeartbeats.layer).pipe(
  Layer.provideMerge(Layer.mergeAll(SilentChangeFeed, ScriptedRuntime.layer, Storage)),
  Layer.provideMerge(TestDatabase.layer())
)

const startWorker = (workerId: string) =>
  Effect.gen(function*() {
    const scope = yield* testScope
    yield* Layer.buildWithScope(
      WorkerRole.layerNoDeps.pipe(
        Layer.provide(WorkerConfig.layerWith({ workerId, pollIntervalMs: 50, leaseTtlMs: 3_000 })),
        Layer.provideMerge(Metrics.layerTest("worker"))
      ),
      scope
    )
    return scope
  })

/** A worker whose only way to retry a restore is its own backoff: the backstop poll is ten minutes away. */
const startBackoffWorker = (workerId: string) =>
  Effect.gen(function*() {
    const scope = yield* testScope
    const context = yield* Layer.buildWithScope(
      WorkerRole.layerNoDeps.pipe(
        Layer.provide(WorkerConfig.layerWith({ workerId, pollIntervalMs: 600_000, leaseTtlMs: 3_000 })),
        Layer.provide(Layer.succeed(RestoreRetryConfig, { baseMs: 20, capMs: 200, retries: 100 })),
        Layer.provideMerge(Metrics.layerTest("worker"))
      ),
      scope
    )
    return { scope, metrics: Context.get(context, Metrics) }
  })

const status = (commandId: string) => Effect.map(commandRow(commandId), (row) => row.status)

const checkpointVersion = (sessionId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ v: number }>`SELECT checkpoint_version::float8 AS v FROM cloud_worker_leases WHERE session_id = ${sessionId}`
    return Number(rows[0]!.v)
  })

const transcriptAt = (sessionId: string, version: number) =>
  Effect.gen(function*() {
    const store = yield* CheckpointStore
    const state = yield* store.load("org_test", sessionId, version)
    return new TextDecoder().decode(state.files.get(ScriptedRuntime.TRANSCRIPT_PATH)!)
  })

const entries = (transcript: string) => [...transcript.matchAll(/^## (\S+)$/gm)].map((match) => match[1])

it.layer(Env, { timeout: 60_000, excludeTestServices: true })("checkpoints on Postgres", (it) => {
  it.effect("object-store outage: no ack while the save fails, nothing lost; restore failure keeps commands pending; both recover", () =>
    Effect.gen(function*() {
      const faults = yield* FaultyObjectStore.ObjectStoreFaults
      yield* createSession("ses_cp")
      yield* enqueue("ses_cp", "cmd_cp_1", "prompt", "first")
      const first = yield* startWorker("worker-cp-1")
      yield* within(Effect.map(status("cmd_cp_1"), (s) => s === "acked"), "first command acked")
      const v1 = yield* checkpointVersion("ses_cp")
      assert.isAbove(v1, 0, "the ack advanced checkpoint_version")
      assert.deepStrictEqual(entries(yield* transcriptAt("ses_cp", v1)), ["cmd_cp_1"])

      // The store goes down while the second command runs (after its restore): the save fails, is retried, no ack.
      yield* enqueue("ses_cp", "cmd_cp_2", "prompt", "[[slow:100]] second")
      yield* within(Effect.map(status("cmd_cp_2"), (s) => s === "running"), "second command running")
      yield* faults.outageFor("1 hour")
      yield* within(Effect.map(faults.injectedFailures, (n) => n >= 3), "the save retried through the outage")
      assert.strictEqual(yield* status("cmd_cp_2"), "running", "no ack without a checkpoint")
      assert.strictEqual(yield* checkpointVersion("ses_cp"), v1)
      const idleBefore = (yield* eventTypes("ses_cp")).filter((e) => e.type === "session.idle").length
      assert.strictEqual(idleBefore, 1)

      yield* faults.reset
      yield* within(Effect.map(status("cmd_cp_2"), (s) => s === "acked"), "acked once the store is back")
      const v2 = yield* checkpointVersion("ses_cp")
      assert.isAbove(v2, v1)
      assert.deepStrictEqual(entries(yield* transcriptAt("ses_cp", v2)), ["cmd_cp_1", "cmd_cp_2"])
      yield* Scope.close(first, Exit.void)

      // A new owner cannot restore while the store is down: the command stays pending and nothing is appended.
      yield* faults.outageFor("1 hour")
      yield* enqueue("ses_cp", "cmd_cp_3", "prompt", "third")
      const eventsBefore = (yield* eventTypes("ses_cp")).length
      const injectedBefore = yield* faults.injectedFailures
      const second = yield* startWorker("worker-cp-2")
      yield* within(Effect.map(faults.injectedFailures, (n) => n >= injectedBefore + 2), "restore attempted and failed")
      assert.strictEqual(yield* status("cmd_cp_3"), "pending")
      assert.strictEqual((yield* eventTypes("ses_cp")).length, eventsBefore, "no events from a session that could not be restored")

      yield* faults.reset
      yield* within(Effect.map(status("cmd_cp_3"), (s) => s === "acked"), "runs after the restore succeeds")
      const v3 = yield* checkpointVersion("ses_cp")
      assert.deepStrictEqual(entries(yield* transcriptAt("ses_cp", v3)), ["cmd_cp_1", "cmd_cp_2", "cmd_cp_3"], "continued from the checkpoint")
      const events = yield* eventTypes("ses_cp")
      assert.deepStrictEqual(events.map((e) => e.sequence), events.map((_, i) => i + 1))
      assert.strictEqual(events.filter((e) => e.type === "session.idle").length, 3, "each command acked once")
      yield* Scope.close(second, Exit.void)
    }))

  it.effect("a stale owner's checkpoint ack is refused and cannot move checkpoint_version", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* (yield* FaultyObjectStore.ObjectStoreFaults).reset
      yield* createSession("ses_stale_cp")
      yield* enqueue("ses_stale_cp", "cmd_stale_cp", "prompt", "hello")
      const worker = yield* startWorker("worker-stale-cp")
      yield* within(Effect.map(status("cmd_stale_cp"), (s) => s === "acked"), "acked")
      yield* Scope.close(worker, Exit.void)
      const before = yield* checkpointVersion("ses_stale_cp")
      const log = yield* Effect.provide(PgEventLog.make, Layer.succeed(SqlClient.SqlClient, sql))
      const refused = yield* Effect.flip(log.append(
        { sessionId: "ses_stale_cp", workerId: "worker-stale-cp", epoch: 1 },
        [{ type: "session.idle", payload: {} }],
        { commandId: "cmd_stale_cp", outcome: "acked", checkpointVersion: before + 100 }
      ))
      assert.strictEqual(refused.operation, "checkpoint")
      assert.strictEqual(yield* checkpointVersion("ses_stale_cp"), before)
    }))

  it.effect("a failed restore is written on the command (redacted), counted, and retried with backoff until the store is back", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const faults = yield* FaultyObjectStore.ObjectStoreFaults
      yield* faults.reset
      yield* createSession("ses_rf")
      yield* enqueue("ses_rf", "cmd_rf_1", "prompt", "first")
      const first = yield* startWorker("worker-rf-1")
      yield* within(Effect.map(status("cmd_rf_1"), (s) => s === "acked"), "first command acked")
      yield* Scope.close(first, Exit.void)

      const commandState = sql<{ status: string; attempt_count: number; last_error: string | null }>`
        SELECT status, attempt_count, last_error FROM cloud_session_commands WHERE id = 'cmd_rf_2'`.pipe(
        Effect.map((rows) => ({ ...rows[0]!, attempt_count: Number(rows[0]!.attempt_count) }))
      )
      yield* faults.outageFor("1 hour")
      yield* enqueue("ses_rf", "cmd_rf_2", "prompt", "second")
      const second = yield* startBackoffWorker("worker-rf-2")
      yield* within(
        Effect.map(commandState, (row) => row.last_error !== null),
        "the restore error recorded on the command"
      )
      assert.deepStrictEqual(yield* commandState, {
        status: "pending",
        attempt_count: 0,
        last_error: "checkpoint restore failed: object store unavailable"
      })
      yield* within(
        Effect.map(second.metrics.read("open_cowork_cloud_worker_checkpoint_failures_total", { operation: "restore" }), (n) => n >= 2),
        "restore retried"
      )

      yield* faults.reset
      yield* within(Effect.map(status("cmd_rf_2"), (s) => s === "acked"), "runs once the store is back, without waiting for the poll")
      assert.deepStrictEqual(yield* commandState, { status: "acked", attempt_count: 0, last_error: null })
      const v = yield* checkpointVersion("ses_rf")
      assert.deepStrictEqual(entries(yield* transcriptAt("ses_rf", v)), ["cmd_rf_1", "cmd_rf_2"])
      yield* Scope.close(second.scope, Exit.void)
    }))

  it.effect("a worker that released a session reuses its warm runtime at the same checkpoint (no restore), and restores when the checkpoint moved", () =>
    Effect.gen(function*() {
      const faults = yield* FaultyObjectStore.ObjectStoreFaults
      const sql = yield* SqlClient.SqlClient
      yield* faults.reset
      yield* createSession("ses_warm")
      yield* enqueue("ses_warm", "cmd_warm_1", "prompt", "first")
      const worker = yield* startWorker("worker-warm")
      yield* within(Effect.map(status("cmd_warm_1"), (s) => s === "acked"), "first command acked")
      const lease = (yield* sql<{ worker_id: string | null }>`SELECT worker_id FROM cloud_worker_leases WHERE session_id = 'ses_warm'`)[0]!
      assert.isNull(lease.worker_id, "the idle session was released")

      // Every read of the store fails from now on: a restore could not succeed (v1 > 0 needs a manifest read), so a
      // second command acked now ran on the warm runtime.
      yield* faults.failNext(1_000_000, ["get"])
      yield* enqueue("ses_warm", "cmd_warm_2", "prompt", "second")
      yield* within(Effect.map(status("cmd_warm_2"), (s) => s === "acked"), "second command acked without a restore")
      yield* faults.reset
      const v2 = yield* checkpointVersion("ses_warm")
      assert.deepStrictEqual(entries(yield* transcriptAt("ses_warm", v2)), ["cmd_warm_1", "cmd_warm_2"], "the warm state carried on")

      // Another owner moved the checkpoint (simulated): the warm runtime no longer matches, so the worker restores,
      // which fails while reads fail: the command stays pending with the restore error on it.
      yield* faults.failNext(1_000_000, ["get"])
      yield* sql`UPDATE cloud_worker_leases SET checkpoint_version = checkpoint_version + 1 WHERE session_id = 'ses_warm'`
      yield* enqueue("ses_warm", "cmd_warm_3", "prompt", "third")
      const lastError = sql<{ last_error: string | null }>`SELECT last_error FROM cloud_session_commands WHERE id = 'cmd_warm_3'`
      yield* within(Effect.map(lastError, (rows) => (rows[0]?.last_error ?? "").startsWith("checkpoint restore failed")), "a restore was attempted")
      assert.strictEqual(yield* status("cmd_warm_3"), "pending", "nothing runs on a state that is not the checkpoint")
      yield* faults.reset
      yield* Scope.close(worker, Exit.void)
    }))
})
