import { Metrics } from "@cowork/observability"
import { layerMemoryControlPlane, WorkflowStore } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import { TestClock } from "effect/testing"
import { workflowInput } from "../../../packages/services/test/support/WorkflowStoreContract.ts"
import { SchedulerConfig } from "../src/SchedulerConfig.ts"
import * as SchedulerLoop from "../src/SchedulerLoop.ts"
import { SchedulerStatus } from "../src/SchedulerStatus.ts"

/**
 * The scheduler loop on the memory store with `TestClock`: idle it reads its outlook once per backstop and runs no
 * pass; a workflow created meanwhile wakes it (the store's change notification), and it then sleeps until that
 * workflow's slot and fires it there; a due slot under another replica's claim is retried every tick (that replica
 * may die before it fires), and a dead replica's claim is reaped when it expires.
 */

const BACKSTOP = 300_000
const TICK = 1_000

/** The memory store, counting `outlook` reads and passes (`claimDue` calls). */
const counting = Effect.gen(function*() {
  const reads = yield* Ref.make(0)
  const passes = yield* Ref.make(0)
  const store = Layer.effect(
    WorkflowStore,
    Effect.map(Effect.service(WorkflowStore), (inner) =>
      WorkflowStore.of({
        ...inner,
        outlook: (limit) => Ref.update(reads, (n) => n + 1).pipe(Effect.andThen(inner.outlook(limit))),
        claimDue: (...args) => Ref.update(passes, (n) => n + 1).pipe(Effect.andThen(inner.claimDue(...args)))
      }))
  )
  return { reads, passes, store }
})

interface Harness {
  readonly reads: Ref.Ref<number>
  readonly passes: Ref.Ref<number>
  /** Starts the loop (in the test's scope). */
  readonly start: Effect.Effect<void, never, never>
}

const run = <A, E>(body: (harness: Harness) => Effect.Effect<A, E, WorkflowStore>) =>
  Effect.gen(function*() {
    const { reads, passes, store } = yield* counting
    return yield* Effect.gen(function*() {
      const context = yield* Effect.context<any>()
      const start = Effect.forkScoped(SchedulerLoop.run).pipe(Effect.asVoid, Effect.provideContext(context)) as Effect.Effect<void>
      return yield* body({ reads, passes, start })
    }).pipe(
      Effect.provide(Layer.mergeAll(
        store,
        SchedulerConfig.layerTest({ schedulerId: "loop", tickMs: TICK, backstopMs: BACKSTOP }),
        SchedulerStatus.layer,
        Metrics.layerTest("scheduler")
      ).pipe(Layer.provideMerge(layerMemoryControlPlane))),
      Effect.scoped
    )
  })

/** Lets the forked loop run up to its next sleep. */
const settle = Effect.gen(function*() {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow
})

it.effect("idle: one outlook read per backstop, no pass; a created workflow wakes it and fires at its slot", () =>
  Effect.gen(function*() {
    yield* TestClock.setTime(Date.parse("2027-10-01T00:00:00Z"))
    yield* run(({ reads, passes, start }) =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore
        yield* start
        yield* settle
        assert.strictEqual(yield* Ref.get(reads), 1)
        yield* TestClock.adjust(BACKSTOP - 1)
        yield* settle
        assert.strictEqual(yield* Ref.get(reads), 1, "asleep until the backstop")
        yield* TestClock.adjust(1)
        yield* settle
        assert.strictEqual(yield* Ref.get(reads), 2, "the backstop reads once")
        assert.strictEqual(yield* Ref.get(passes), 0, "nothing due: no pass")

        // Created at 00:05:00; its first slot is 00:10:00.
        const workflow = yield* store.create("org_loop", workflowInput({
          triggers: [{ id: "s", type: "schedule", enabled: true, schedule: { type: "cron", expression: "*/10 * * * *", timezone: "UTC" } }]
        }))
        assert.strictEqual(workflow.nextRunAt, "2027-10-01T00:10:00.000Z")
        yield* settle
        assert.strictEqual(yield* Ref.get(reads), 3, "the change woke it")
        yield* TestClock.adjust(5 * 60_000 - 1)
        yield* settle
        assert.strictEqual(yield* Ref.get(reads), 3, "asleep until the slot")
        yield* TestClock.adjust(1)
        yield* settle
        assert.strictEqual(yield* Ref.get(passes), 1, "woke at the slot and ran a pass")
        const runs = yield* store.listRuns("org_loop", workflow.id, { limit: 10 })
        assert.deepStrictEqual(runs.runs.map((r) => r.scheduledFor), ["2027-10-01T00:10:00.000Z"])
      }))
  }))

it.effect("a dead replica's claim on a due slot: a pass per tick until it expires, then reaped and fired; open runs followed every tick", () =>
  Effect.gen(function*() {
    yield* TestClock.setTime(Date.parse("2027-10-02T00:00:00Z"))
    yield* run(({ passes, start }) =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore
        // Before the loop starts, a replica claims an every-second workflow and dies holding the 30 s claim.
        const due = yield* store.create("org_loop", workflowInput({
          triggers: [{ id: "s", type: "schedule", enabled: true, schedule: { type: "cron", expression: "* * * * * *", timezone: "UTC" } }],
          catchUpWindowSeconds: 3_600
        }))
        yield* TestClock.adjust(TICK)
        const { claims } = yield* store.claimDue("dead", 100, 30_000)
        assert.isTrue(claims.some((c) => c.workflowId === due.id))
        // The dead replica's claimDue went through the counting store too.
        const base = yield* Ref.get(passes)
        yield* start
        yield* settle
        assert.strictEqual(yield* Ref.get(passes), base + 1, "a due slot under a live claim: a pass (it claims nothing)")
        yield* TestClock.adjust(TICK)
        yield* settle
        assert.strictEqual(yield* Ref.get(passes), base + 2, "then one per tick: the claimer may die before it fires")
        yield* TestClock.adjust(30_000 - TICK - 1)
        yield* settle
        const beforeExpiry = yield* Ref.get(passes)
        assert.strictEqual((yield* store.listRuns("org_loop", due.id, { limit: 100 })).runs.length, 0, "nothing fired under the live claim")
        yield* TestClock.adjust(1)
        yield* settle
        assert.strictEqual(yield* Ref.get(passes), beforeExpiry + 1, "the pass at the expiry reaped the claim and fired")
        const runs = yield* store.listRuns("org_loop", due.id, { limit: 100 })
        const fired = runs.runs.filter((r) => r.status !== "cancelled").map((r) => r.scheduledFor)
        assert.strictEqual(fired.length, 31, "every slot of the outage fired once")
        assert.strictEqual(new Set(fired).size, fired.length)

        // Those runs are open (no worker here): their outcomes are followed once per tick, not faster.
        yield* TestClock.adjust(TICK)
        yield* settle
        const followed = yield* Ref.get(passes)
        assert.strictEqual(followed, beforeExpiry + 2)
        yield* TestClock.adjust(TICK / 2)
        yield* settle
        assert.strictEqual(yield* Ref.get(passes), followed)
      }))
  }))

it("sleepAfter: the earliest of slot, claim expiry, outcome poll and backstop; never sooner than a tick after a pass", () => {
  const base = { now: 1_000_000, depth: 0, capped: false, oldestDueMs: 0, nextDueAt: null, claimExpiresAt: null, openRuns: false }
  const settings = { tickMs: 1_000, backstopMs: 300_000 }
  const idle = { msSinceTick: Number.POSITIVE_INFINITY, fullBatch: false }
  assert.strictEqual(SchedulerLoop.sleepAfter(base, settings, idle), 300_000)
  assert.strictEqual(SchedulerLoop.sleepAfter({ ...base, nextDueAt: 1_060_000 }, settings, idle), 60_000)
  assert.strictEqual(SchedulerLoop.sleepAfter({ ...base, nextDueAt: 990_000, depth: 1 }, settings, idle), 0)
  assert.strictEqual(SchedulerLoop.sleepAfter({ ...base, claimExpiresAt: 1_030_000, nextDueAt: 1_060_000 }, settings, idle), 30_000)
  assert.strictEqual(SchedulerLoop.sleepAfter({ ...base, openRuns: true }, settings, { msSinceTick: 400, fullBatch: false }), 600)
  // Due but the last pass (200 ms ago) did not take it (another replica holds it): wait out the tick.
  assert.strictEqual(SchedulerLoop.sleepAfter({ ...base, nextDueAt: 990_000, depth: 1 }, settings, { msSinceTick: 200, fullBatch: false }), 800)
  assert.strictEqual(SchedulerLoop.sleepAfter({ ...base, nextDueAt: 990_000, depth: 1 }, settings, { msSinceTick: 200, fullBatch: true }), 0)
})
