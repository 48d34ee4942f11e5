import { PgChangeFeed, PgCommandQueue, PgEventLog, PgHeartbeats, PgLeaseStore } from "@cowork/postgres"
import { Metrics } from "@cowork/observability"
import { WorkerConfig, type WorkerSettings } from "@cowork/worker"
import * as WorkerRole from "@cowork/worker"
import { assert, it } from "@effect/vitest"
import { Effect, Exit, Layer, Queue, Scope } from "effect"
import { SqlClient } from "effect/sql"
import { createSession, enqueue } from "../../../packages/postgres/test/support/WorkerFixtures.ts"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import { GatedRuntime } from "./support/GatedRuntime.ts"
import { testScope } from "../../../test/support/TestScope.ts"

// Real LISTEN/NOTIFY between two in-process workers on one database.
const Env = Layer.mergeAll(PgLeaseStore.layer, PgCommandQueue.layer, PgEventLog.layer, PgHeartbeats.layer).pipe(
  Layer.provideMerge(Layer.merge(PgChangeFeed.layer, GatedRuntime.layer)),
  Layer.provideMerge(TestDatabase.layer())
)

/** Far beyond the test's deadline: a claim within the deadline came from the release signal, not a tick. */
const BACKSTOP_MS = 600_000

const startWorker = (settings: Partial<WorkerSettings>) =>
  Effect.gen(function*() {
    const scope = yield* testScope
    yield* Layer.buildWithScope(
      WorkerRole.layerNoDeps.pipe(
        Layer.provide(WorkerConfig.layerWith({ leaseTtlMs: BACKSTOP_MS, reaperIntervalMs: BACKSTOP_MS, ...settings })),
        Layer.provideMerge(Metrics.layerTest("worker"))
      ),
      scope
    )
    return scope
  })

it.layer(Env, { timeout: 60_000, excludeTestServices: true })("drain handover on Postgres", (it) => {
  it.effect("a drained worker's lease is claimed by another worker on the NOTIFY, not on its poll or reaper tick", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const runtime = yield* GatedRuntime
      yield* createSession("ses_handover")
      yield* enqueue("ses_handover", "cmd_handover", "prompt", "hangs past the grace")
      const workerA = yield* startWorker({ workerId: "worker-a", pollIntervalMs: 50, shutdownGraceMs: 200 })
      assert.strictEqual((yield* Queue.take(runtime.started)).attempt, 1)
      const workerB = yield* startWorker({ workerId: "worker-b", pollIntervalMs: BACKSTOP_MS })

      yield* Scope.close(workerA, Exit.void)
      const drainedAt = Date.now()
      const rerun = yield* Queue.take(runtime.started).pipe(
        Effect.timeoutOrElse({ duration: 10_000, orElse: () => Effect.die("worker-b did not claim the released session within 10 s") })
      )
      const handoverMs = Date.now() - drainedAt
      yield* Effect.logInfo("drain handover").pipe(Effect.annotateLogs({ handover_ms: handoverMs }))
      assert.deepStrictEqual([rerun.commandId, rerun.attempt], ["cmd_handover", 2])
      const [lease] = yield* sql<{ worker_id: string }>`SELECT worker_id FROM cloud_worker_leases WHERE session_id = 'ses_handover'`
      assert.strictEqual(lease!.worker_id, "worker-b")
      yield* runtime.release("cmd_handover", 2)
      yield* Scope.close(workerB, Exit.void)
    }))
})
