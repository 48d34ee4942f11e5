import type { WorkflowSchedule } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { layerMemoryControlPlane, planSlots, Quotas, WorkflowStore } from "@cowork/services"
import { assert, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import { workflowInput } from "../../../packages/services/test/support/WorkflowStoreContract.ts"
import { SchedulerConfig } from "../src/SchedulerConfig.ts"
import { tick } from "../src/SchedulerTick.ts"

/**
 * The scheduler's tick on the memory store, with `TestClock` standing in for time: three replicas tick the same
 * store concurrently across a DST change, a month end and a catch-up after downtime; every slot fires once.
 */

const tickAs = (schedulerId: string) => tick.pipe(Effect.provide(SchedulerConfig.layerTest({ schedulerId })))
const replicas = Effect.all([tickAs("a"), tickAs("b"), tickAs("c")], { concurrency: "unbounded" })

const HOUR = 3_600_000

const scheduled = (schedule: WorkflowSchedule, overrides: Parameters<typeof workflowInput>[0] = {}) =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore
    const org = `org_${globalThis.crypto.randomUUID().slice(0, 8)}`
    const workflow = yield* store.create(org, workflowInput({
      triggers: [{ id: "s", type: "schedule", enabled: true, schedule }],
      overlapPolicy: "allow",
      ...overrides
    }))
    const slots = Effect.map(store.listRuns(org, workflow.id, { limit: 100 }), (page) =>
      page.runs.filter((run) => run.status !== "cancelled").map((run) => run.scheduledFor!).sort())
    const skipped = Effect.map(store.listRuns(org, workflow.id, { limit: 100 }), (page) => page.runs.filter((run) => run.status === "cancelled"))
    return { orgId: org, workflow, slots, skipped }
  })

/** Steps the clock from now to `until` by `step`, all three replicas ticking after every step. */
const runUntil = (until: number, step: number) =>
  Effect.gen(function*() {
    for (;;) {
      yield* replicas
      const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
      if (now >= until) return
      yield* TestClock.adjust(Math.min(step, until - now))
    }
  })

const storeLayer = Layer.mergeAll(WorkflowStore.layerMemory, Metrics.layerTest("scheduler")).pipe(Layer.provideMerge(layerMemoryControlPlane))

layer(storeLayer)("scheduler tick (memory store, TestClock, 3 replicas)", (it) => {
  it.effect("a 09:00 Europe/London weekday job fires at 09:00 local on both sides of the spring-forward change, once each", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2026-03-26T12:00:00Z"))
      const { slots } = yield* scheduled({ type: "cron", expression: "0 9 * * 1-5", timezone: "Europe/London" })
      yield* runUntil(Date.parse("2026-04-01T12:00:00Z"), HOUR / 2)
      assert.deepStrictEqual(yield* slots, [
        "2026-03-27T09:00:00.000Z", // Friday, GMT
        "2026-03-30T08:00:00.000Z", // Monday, BST: 09:00 local
        "2026-03-31T08:00:00.000Z",
        "2026-04-01T08:00:00.000Z"
      ])
    }))

  it.effect("spring forward: 01:30 (which does not exist that night) fires once at 02:00 BST; fall back: once, the first 01:30", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2026-03-28T00:00:00Z"))
      const spring = yield* scheduled({ type: "daily", timezone: "Europe/London", runAtHour: 1, runAtMinute: 30 })
      yield* runUntil(Date.parse("2026-03-30T12:00:00Z"), HOUR / 4)
      assert.deepStrictEqual(yield* spring.slots, ["2026-03-28T01:30:00.000Z", "2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"])

      yield* TestClock.setTime(Date.parse("2026-10-24T12:00:00Z"))
      const fall = yield* scheduled({ type: "daily", timezone: "Europe/London", runAtHour: 1, runAtMinute: 30 })
      yield* runUntil(Date.parse("2026-10-26T12:00:00Z"), HOUR / 4)
      assert.deepStrictEqual(yield* fall.slots, ["2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"])
    }))

  it.effect("month end: dayOfMonth 31 fires on the 31st, and on the last day of shorter months", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2027-01-30T00:00:00Z"))
      const { slots } = yield* scheduled({ type: "monthly", timezone: "UTC", runAtHour: 6, runAtMinute: 0, dayOfMonth: 31 })
      yield* runUntil(Date.parse("2027-05-01T00:00:00Z"), 6 * HOUR)
      assert.deepStrictEqual(yield* slots, [
        "2027-01-31T06:00:00.000Z",
        "2027-02-28T06:00:00.000Z",
        "2027-03-31T06:00:00.000Z",
        "2027-04-30T06:00:00.000Z"
      ])
    }))

  it.effect("catch-up after downtime: slots within the window fire once each, older ones are one skipped record", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2027-06-01T00:00:00Z"))
      const each = yield* scheduled({ type: "cron", expression: "*/10 * * * *", timezone: "UTC" }, { catchUpWindowSeconds: 1_800 })
      const latest = yield* scheduled({ type: "cron", expression: "*/10 * * * *", timezone: "UTC" }, { catchUpWindowSeconds: 1_800, catchUpMode: "latest" })
      yield* replicas
      // Downtime: three hours with no scheduler running.
      yield* TestClock.adjust(3 * HOUR + 5 * 60_000)
      yield* replicas
      assert.deepStrictEqual(yield* each.slots, ["2027-06-01T02:40:00.000Z", "2027-06-01T02:50:00.000Z", "2027-06-01T03:00:00.000Z"])
      const skipped = yield* each.skipped
      assert.strictEqual(skipped.length, 1, "one record for the missed slots, never a burst")
      assert.include(skipped[0]!.summary ?? "", "skipped 15 slot(s)")
      assert.deepStrictEqual(yield* latest.slots, ["2027-06-01T03:00:00.000Z"])
      yield* replicas
      assert.strictEqual((yield* each.slots).length, 3, "nothing fires twice on the next tick")
    }))

  it.effect("overlap skip: a slot due while the last run is open is recorded as skipped, not started", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2027-07-01T00:00:30Z"))
      const { slots, skipped } = yield* scheduled({ type: "cron", expression: "* * * * *", timezone: "UTC" }, { overlapPolicy: "skip" })
      yield* runUntil(Date.parse("2027-07-01T00:05:30Z"), 60_000)
      assert.deepStrictEqual(yield* slots, ["2027-07-01T00:01:00.000Z"], "no worker ran it: the first run stays open")
      assert.strictEqual((yield* skipped).length, 4)
    }))

  it.effect("workflow_runs_per_hour: slots past the org's quota are recorded as refused runs and counted; the next hour fires; other orgs unaffected", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics
      yield* TestClock.setTime(Date.parse("2027-09-01T00:00:00Z"))
      const every10 = { type: "cron", expression: "*/10 * * * *", timezone: "UTC" } as const
      const limited = yield* scheduled(every10)
      const free = yield* scheduled(every10)
      const before = yield* metrics.read("open_cowork_cloud_quota_rejections_total", { quota: "workflow_runs_per_hour" })
      yield* (yield* Quotas).setOverride(limited.orgId, "workflow_runs_per_hour", 3)
      yield* runUntil(Date.parse("2027-09-01T01:05:00Z"), 5 * 60_000)
      assert.deepStrictEqual(yield* limited.slots, [
        "2027-09-01T00:10:00.000Z",
        "2027-09-01T00:20:00.000Z",
        "2027-09-01T00:30:00.000Z",
        "2027-09-01T01:00:00.000Z" // a new clock hour: the quota has room again
      ])
      const refused = yield* limited.skipped
      assert.deepStrictEqual(refused.map((run) => run.scheduledFor).sort(), ["2027-09-01T00:40:00.000Z", "2027-09-01T00:50:00.000Z"])
      assert.isTrue(refused.every((run) => (run.summary ?? "").includes("workflow runs per hour quota (3)")))
      assert.strictEqual((yield* metrics.read("open_cowork_cloud_quota_rejections_total", { quota: "workflow_runs_per_hour" })) - before, 2)
      assert.strictEqual(yield* metrics.read("open_cowork_cloud_scheduler_slots_total", { outcome: "skipped_quota" }), 2)
      assert.strictEqual((yield* free.slots).length, 6, "another org's workflow fired every slot")
    }))

  it.effect("a replica dies holding a claim: after the TTL another reaps and fires; the dead one's late write is StaleClaim", () =>
    Effect.gen(function*() {
      const store = yield* WorkflowStore
      yield* TestClock.setTime(Date.parse("2027-08-01T00:00:00.500Z"))
      const { slots } = yield* scheduled({ type: "cron", expression: "* * * * * *", timezone: "UTC" })
      yield* TestClock.adjust(1_000)
      // "dead" claims the due workflow and then stops (SIGKILL): its claim stays until it expires.
      const { now, claims } = yield* store.claimDue("dead", 100, 30_000)
      const held = claims[0]!
      yield* replicas
      assert.deepStrictEqual(yield* slots, [], "a live claim keeps the others off")
      yield* TestClock.adjust(30_000)
      yield* replicas
      const plan = planSlots({ triggers: held.triggers, cursor: held.cursor, now, catchUpWindowMs: 3_600_000, catchUpMode: "each" })
      assert.strictEqual((yield* Effect.flip(store.fireSlots(held, plan)))._tag, "StaleClaim")
      const fired = yield* slots
      assert.strictEqual(new Set(fired).size, fired.length)
      assert.strictEqual(fired[0], "2027-08-01T00:00:01.000Z")
      assert.strictEqual(fired.length, 31, "the catch-up fired every slot of the outage once")
    }))
})
