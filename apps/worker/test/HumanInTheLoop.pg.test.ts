import { PgChangeFeed, PgCommandQueue, PgEventLog, PgHeartbeats, PgLeaseStore, PgSessionStore } from "@cowork/postgres"
import { ScriptedRuntime } from "@cowork/runtime"
import { SessionStore } from "@cowork/services"
import { Metrics } from "@cowork/observability"
import { WorkerConfig } from "@cowork/worker"
import * as WorkerRole from "@cowork/worker"
import { assert, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import { commandRow, createSession, eventTypes } from "../../../packages/postgres/test/support/WorkerFixtures.ts"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import { within } from "../../../test/support/Eventually.ts"
import { testScope } from "../../../test/support/TestScope.ts"

/**
 * Human in the loop on Postgres: the answer is queued through `SessionStore.answer` (its `NOTIFY answer` reaches the
 * worker through the real change feed), taken by the waiting turn ahead of a prompt queued before it, and delivered.
 */
const Env = Layer.mergeAll(PgLeaseStore.layer, PgCommandQueue.layer, PgEventLog.layer, PgHeartbeats.layer, PgSessionStore.layer).pipe(
  Layer.provideMerge(Layer.merge(PgChangeFeed.layer, ScriptedRuntime.layer)),
  Layer.provideMerge(TestDatabase.layer())
)

const startWorker = (workerId: string) =>
  Effect.gen(function*() {
    const scope = yield* testScope
    // A backstop poll far longer than the test: the claim and the answer travel by notification.
    yield* Layer.buildWithScope(
      WorkerRole.layerNoDeps.pipe(
        Layer.provide(WorkerConfig.layerWith({ workerId, pollIntervalMs: 600_000, leaseTtlMs: 10_000 })),
        Layer.provideMerge(Metrics.layerTest("worker"))
      ),
      scope
    )
    return scope
  })

const types = (sessionId: string) => Effect.map(eventTypes(sessionId), (events) => events.map((e) => e.type))

it.layer(Env, { timeout: 60_000, excludeTestServices: true })("human in the loop and interrupts on Postgres", (it) => {
  it.effect("the waiting turn takes its answer ahead of a queued prompt; the ask shows in the view until answered", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionStore
      yield* createSession("ses_hitl", "org_hitl")
      const worker = yield* startWorker("worker-hitl")
      const { commandId } = yield* sessions.prompt("org_hitl", "ses_hitl", { text: "change it [[permission]]" })
      yield* within(Effect.map(types("ses_hitl"), (t) => t.includes("permission.requested")), "permission requested")
      const waiting = yield* sessions.view("org_hitl", "ses_hitl")
      assert.deepStrictEqual(waiting.pendingPermissions.map((p) => p.permissionId), [`per_${commandId}_1`])
      const queued = yield* sessions.prompt("org_hitl", "ses_hitl", { text: "next" })

      const answer = yield* sessions.answer("org_hitl", "ses_hitl", { kind: "permission_respond", permissionId: `per_${commandId}_1`, response: "always" })
      yield* within(Effect.map(commandRow(queued.commandId), (row) => row.status === "acked"), "both turns done")
      assert.deepStrictEqual(yield* commandRow(answer.commandId), { status: "acked", attemptCount: 0 })
      const all = (yield* types("ses_hitl")).filter((t) => t !== "assistant.message")
      assert.deepStrictEqual(all, [
        "session.created", "prompt.submitted", "session.status", "permission.requested", "prompt.submitted",
        "permission.replied", "tool.call", "session.idle", "session.status", "session.idle"
      ])
      const done = yield* sessions.view("org_hitl", "ses_hitl")
      assert.deepStrictEqual(done.pendingPermissions, [])
      assert.deepStrictEqual(done.messages.filter((m) => m.role === "assistant").map((m) => m.text), [
        "echo: change it [permission always]", "echo: next"
      ])
      yield* Scope.close(worker, Exit.void)
    }))

  it.effect("multitaskStrategy interrupt stops the running turn through the real change feed; the interrupting prompt runs next", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionStore
      yield* createSession("ses_interrupt", "org_hitl")
      const worker = yield* startWorker("worker-interrupt")
      const long = yield* sessions.prompt("org_hitl", "ses_interrupt", { text: "forever [[hang]]" })
      yield* within(Effect.map(types("ses_interrupt"), (t) => t.includes("assistant.message")), "the long turn streams")
      const urgent = yield* sessions.prompt("org_hitl", "ses_interrupt", { text: "now", multitaskStrategy: "interrupt" })
      yield* within(Effect.map(commandRow(urgent.commandId), (row) => row.status === "acked"), "the interrupting prompt ran")
      assert.deepStrictEqual(yield* commandRow(long.commandId), { status: "cancelled", attemptCount: 0 })
      const idles = (yield* eventTypes("ses_interrupt")).filter((e) => e.type === "session.idle").map((e) => e.payload)
      assert.deepStrictEqual(idles, [
        { commandId: long.commandId, outcome: "interrupted", interruptedBy: urgent.commandId },
        { commandId: urgent.commandId, outcome: "acked" }
      ])
      yield* Scope.close(worker, Exit.void)
    }))
})
