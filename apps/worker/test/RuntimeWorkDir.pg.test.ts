import { PgCommandQueue, PgEventLog, PgHeartbeats, PgLeaseStore } from "@cowork/postgres"
import { Metrics } from "@cowork/observability"
import { ScriptedRuntime } from "@cowork/runtime"
import { LocalKeyFileSecretAdapter } from "@cowork/secrets"
import { AgentRuntime, ObjectStore } from "@cowork/services"
import { CheckpointStore } from "@cowork/storage"
import { WorkerConfig } from "@cowork/worker"
import * as WorkerRole from "@cowork/worker"
import { assert, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { commandRow, createSession, enqueue } from "../../../packages/postgres/test/support/WorkerFixtures.ts"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import { within } from "../../../test/support/Eventually.ts"
import { testScope } from "../../../test/support/TestScope.ts"
import { SilentChangeFeed } from "../../../test/support/SilentChangeFeed.ts"

/**
 * A runtime's local files (opencode's per-session directory) go when its session ends here or moves, but only when a
 * checkpoint holds the state: the worker marks the runtime `discardOnClose` exactly when checkpoints are on.
 */
const discarded: Array<string> = []
const RecordingRuntime = Layer.effect(AgentRuntime, Effect.gen(function*() {
  const scripted = yield* ScriptedRuntime.make({})
  return AgentRuntime.of({
    kind: "scripted",
    open: (sessionId, context) =>
      Effect.map(scripted.open(sessionId, context), (session) => ({
        ...session,
        discardOnClose: Effect.sync(() => { discarded.push(sessionId) })
      }))
  })
}))

const keyFile = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "cowork-workdir-key-")), "secret.key")
const Checkpoints = CheckpointStore.layer.pipe(
  Layer.provide(ObjectStore.layerMemory),
  Layer.provideMerge(LocalKeyFileSecretAdapter.layer(keyFile))
)

const stores = Layer.mergeAll(PgLeaseStore.layer, PgCommandQueue.layer, PgEventLog.layer, PgHeartbeats.layer)

const runOnePrompt = (sessionId: string) =>
  Effect.gen(function*() {
    yield* createSession(sessionId)
    yield* enqueue(sessionId, `cmd_${sessionId}`, "prompt", "hello")
    const scope = yield* testScope
    yield* Layer.buildWithScope(
      WorkerRole.layerNoDeps.pipe(
        Layer.provide(WorkerConfig.layerWith({ workerId: `worker-${sessionId}`, pollIntervalMs: 50, leaseTtlMs: 3_000 })),
        Layer.provideMerge(Metrics.layerTest("worker"))
      ),
      scope
    )
    yield* within(Effect.map(commandRow(`cmd_${sessionId}`), (row) => row.status === "acked"), "prompt acked")
    yield* Scope.close(scope, Exit.void)
  })

it.layer(
  stores.pipe(Layer.provideMerge(Layer.mergeAll(SilentChangeFeed, RecordingRuntime, Checkpoints)), Layer.provideMerge(TestDatabase.layer())),
  { timeout: 60_000, excludeTestServices: true }
)("runtime work dirs with checkpoints", (it) => {
  it.effect("the runtime of a checkpointed session is marked to discard its files on close", () =>
    Effect.gen(function*() {
      yield* runOnePrompt("ses_checkpointed")
      assert.include(discarded, "ses_checkpointed")
    }))
})

it.layer(
  stores.pipe(Layer.provideMerge(Layer.mergeAll(SilentChangeFeed, RecordingRuntime)), Layer.provideMerge(TestDatabase.layer())),
  { timeout: 60_000, excludeTestServices: true }
)("runtime work dirs without checkpoints", (it) => {
  it.effect("without checkpoints the files are the session's state: never discarded", () =>
    Effect.gen(function*() {
      yield* runOnePrompt("ses_local")
      assert.notInclude(discarded, "ses_local")
    }))
})
