import { PgCommandQueue, PgEventLog, PgHeartbeats, PgLeaseStore } from "@cowork/postgres"
import { PgWorkerRegistry } from "@cowork/postgres"
import { Metrics } from "@cowork/observability"
import { ScriptedRuntime } from "@cowork/runtime"
import { Heartbeats, LeaseStore, WorkerRegistry } from "@cowork/services"
import { WorkerConfig, type WorkerSettings } from "@cowork/worker"
import * as WorkerRole from "@cowork/worker"
import { assert, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { SqlClient } from "effect/sql"
import { commandRow, createSession, enqueue } from "../../../packages/postgres/test/support/WorkerFixtures.ts"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import { within } from "../../../test/support/Eventually.ts"
import { testScope } from "../../../test/support/TestScope.ts"
import { SilentChangeFeed } from "../../../test/support/SilentChangeFeed.ts"

const Env = Layer.mergeAll(PgLeaseStore.layer, PgCommandQueue.layer, PgEventLog.layer, PgHeartbeats.layer, PgWorkerRegistry.layer).pipe(
  Layer.provideMerge(Layer.merge(SilentChangeFeed, ScriptedRuntime.layer)),
  Layer.provideMerge(TestDatabase.layer())
)

const operator = { orgId: null, actor: "test:operator" }

/** The running worker, its scope, and a count of the claim passes it has finished (each one times the claim query). */
const startWorker = (settings: Partial<WorkerSettings>) =>
  Effect.gen(function*() {
    const scope = yield* testScope
    // Building the layer writes the first heartbeat (or fails to) before it returns; claim passes run after.
    const context = yield* Layer.buildWithScope(
      WorkerRole.layerNoDeps.pipe(
        Layer.provide(WorkerConfig.layerWith({ pollIntervalMs: 50, heartbeatIntervalMs: 50, leaseTtlMs: 3_000, ...settings })),
        Layer.provideMerge(Metrics.layerTest("worker"))
      ),
      scope
    )
    const metrics = Context.get(context, Metrics)
    return { scope, claimPasses: metrics.read("open_cowork_cloud_runnable_session_claim_duration_ms") }
  })

/** Waits until the worker has finished two more claim passes than now, so at least one began after this call. */
const afterAFullClaimPass = (claimPasses: Effect.Effect<number>) =>
  Effect.gen(function*() {
    const start = yield* claimPasses
    yield* within(Effect.map(claimPasses, (n) => n >= start + 2), "a full claim pass")
  })

const heartbeatOf = (workerId: string) =>
  Effect.gen(function*() {
    const heartbeats = yield* Heartbeats
    return (yield* heartbeats.list(60_000)).find((beat) => beat.workerId === workerId)
  })

it.layer(Env, { timeout: 60_000, excludeTestServices: true })("managed WorkerRole on Postgres", (it) => {
  it.effect("a draining worker finishes its session, claims nothing new, and its heartbeat load reaches zero", () =>
    Effect.gen(function*() {
      const registry = yield* WorkerRegistry
      const sql = yield* SqlClient.SqlClient
      const pool = yield* registry.createPool({ name: "drain", mode: "self_hosted", maxWorkers: 1, maxConcurrentWork: 4 }, operator)
      const worker = yield* registry.registerWorker({ poolId: pool.id, id: "worker-managed" }, operator)
      const { plaintext } = yield* registry.issueCredential(worker.id, {}, operator)
      yield* registry.transition(worker.id, "activate", operator, 15_000)

      yield* createSession("ses_busy")
      yield* enqueue("ses_busy", "cmd_busy_1", "prompt", "[[slow:150]] first")
      const { scope, claimPasses } = yield* startWorker({ workerId: worker.id, credential: plaintext })
      yield* within(
        Effect.map(heartbeatOf(worker.id), (beat) => beat?.activeWorkIds.includes("ses_busy") === true),
        "the worker holds the busy session"
      )

      yield* registry.transition(worker.id, "drain", operator, 15_000)
      // Work queued on the held session still runs (its lease is renewed); a new session is not claimed.
      yield* enqueue("ses_busy", "cmd_busy_2", "prompt", "[[slow:100]] second")
      yield* createSession("ses_new")
      yield* enqueue("ses_new", "cmd_new", "prompt", "hello")
      yield* within(Effect.map(commandRow("cmd_busy_2"), (row) => row.status === "acked"), "held session drained")
      yield* within(
        Effect.map(heartbeatOf(worker.id), (beat) =>
          beat !== undefined && beat.status === "draining" && beat.currentLoad === 0 && beat.activeWorkIds.length === 0),
        "heartbeat shows draining with currentLoad=0 and activeWorkIds=[]"
      )
      yield* afterAFullClaimPass(claimPasses)
      assert.strictEqual((yield* commandRow("cmd_new")).status, "pending", "the draining worker claimed nothing new")
      const lease = yield* sql<{ worker_id: string | null }>`SELECT worker_id FROM cloud_worker_leases WHERE session_id = 'ses_new'`
      assert.isNull(lease[0]!.worker_id)
      // The claim SQL itself refuses a draining worker, whoever calls it.
      assert.deepStrictEqual(yield* (yield* LeaseStore).claim(worker.id, 4, 3_000, 3, plaintext), [])

      yield* registry.transition(worker.id, "resume", operator, 15_000)
      yield* within(Effect.map(commandRow("cmd_new"), (row) => row.status === "acked"), "resumed worker claims again")
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("a worker whose credential is revoked stops heartbeating and claims nothing", () =>
    Effect.gen(function*() {
      const registry = yield* WorkerRegistry
      const pool = yield* registry.createPool({ name: "revoke", mode: "self_hosted", maxWorkers: 1, maxConcurrentWork: 4 }, operator)
      const worker = yield* registry.registerWorker({ poolId: pool.id, id: "worker-revoked" }, operator)
      const issued = yield* registry.issueCredential(worker.id, {}, operator)
      yield* registry.transition(worker.id, "activate", operator, 15_000)
      yield* registry.revokeCredential(worker.id, issued.credential.id, operator)
      yield* createSession("ses_revoked")
      yield* enqueue("ses_revoked", "cmd_revoked", "prompt", "hello")
      const { scope, claimPasses } = yield* startWorker({ workerId: worker.id, credential: issued.plaintext })
      assert.isUndefined(yield* heartbeatOf(worker.id), "no heartbeat is written with a revoked credential")
      yield* afterAFullClaimPass(claimPasses)
      assert.strictEqual((yield* commandRow("cmd_revoked")).status, "pending")
      assert.deepStrictEqual(yield* (yield* LeaseStore).claim(worker.id, 4, 3_000, 3, issued.plaintext), [])
      assert.isUndefined(yield* heartbeatOf(worker.id), "nor by the heartbeats since")
      yield* Scope.close(scope, Exit.void)
    }))
})
