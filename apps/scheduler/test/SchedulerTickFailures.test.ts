import { Metrics } from "@cowork/observability"
import { layerMemoryControlPlane, WorkflowStore } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import { workflowInput } from "../../../packages/services/test/support/WorkflowStoreContract.ts"
import { SchedulerConfig } from "../src/SchedulerConfig.ts"
import { tick } from "../src/SchedulerTick.ts"

/** A store whose outcome sync and reaper fail: the tick counts each by operation and still fires what is due. */
const faultyStore = Layer.effect(
  WorkflowStore,
  Effect.map(Effect.service(WorkflowStore), (store) =>
    WorkflowStore.of({
      ...store,
      syncRunOutcomes: () => Effect.die(new Error("connection reset")),
      reapExpiredClaims: () => Effect.die(new Error("connection reset"))
    }))
).pipe(Layer.provide(WorkflowStore.layerMemory))

it.effect("a failing stage is counted by operation and the tick goes on", () =>
  Effect.gen(function*() {
    yield* TestClock.setTime(Date.parse("2027-09-01T00:00:00.500Z"))
    const store = yield* WorkflowStore
    const metrics = yield* Metrics
    const created = yield* store.create("org_faulty", workflowInput({
      triggers: [{ id: "s", type: "schedule", enabled: true, schedule: { type: "cron", expression: "* * * * * *", timezone: "UTC" } }]
    }))
    yield* TestClock.adjust(1_000)
    const report = yield* tick.pipe(Effect.provide(SchedulerConfig.layerTest({ schedulerId: "faulty" })))
    assert.strictEqual(report.started, 1, "the due slot still fired")
    assert.strictEqual(yield* metrics.read("open_cowork_cloud_scheduler_failures_total", { operation: "sync_outcomes" }), 1)
    assert.strictEqual(yield* metrics.read("open_cowork_cloud_scheduler_failures_total", { operation: "reap" }), 1)
    assert.strictEqual(yield* metrics.read("open_cowork_cloud_scheduler_failures_total", { operation: "claim" }), 0)
    assert.strictEqual((yield* store.listRuns("org_faulty", created.id, { limit: 5 })).totalEstimate, 1)
  }).pipe(Effect.provide(Layer.mergeAll(faultyStore, Metrics.layerTest("scheduler")).pipe(
    Layer.provideMerge(layerMemoryControlPlane)
  ))))
