import { Metrics } from "@cowork/observability"
import { ChangeFeed, type CommandSignal, Heartbeats, type ReapOptions, type ReapResult, type Resync } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Clock, Effect, Layer, PubSub, Stream } from "effect"
import { TestClock } from "effect/testing"
import { ClaimWake } from "../src/ClaimWake.ts"
import * as Reaper from "../src/Reaper.ts"
import { WorkerConfig } from "../src/WorkerConfig.ts"
import { settle, stubLeaseStore } from "./support/StubStores.ts"

const reaping = (result: ReapResult, seen: Array<ReapOptions>) =>
  Layer.mergeAll(
    stubLeaseStore({ reapExpired: (options) => Effect.sync(() => { seen.push(options) }).pipe(Effect.as(result)) }),
    Metrics.layerTest("worker"),
    ClaimWake.layer,
    WorkerConfig.layerWith({ reaperDrainCap: 30, maxCommandAttempts: 5 })
  )

const reaped = (outcome: "requeued" | "dead" | "idle") =>
  Effect.gen(function*() {
    const metrics = yield* Metrics
    return yield* metrics.read("open_cowork_cloud_worker_expired_leases_reaped_total", { outcome })
  })

it.effect("a tick counts what it reaped by outcome and the drain cap, and wakes the claim loop", () => {
  const seen: Array<ReapOptions> = []
  return Effect.gen(function*() {
    const metrics = yield* Metrics
    const wake = yield* ClaimWake
    yield* Reaper.reapTick
    assert.deepStrictEqual(seen, [{ batchSize: 30, drainCap: 30, maxAttempts: 5 }])
    assert.deepStrictEqual([yield* reaped("requeued"), yield* reaped("dead"), yield* reaped("idle")], [4, 1, 2])
    assert.strictEqual(yield* metrics.read("open_cowork_cloud_worker_expired_lease_reaper_drain_cap_hits_total"), 1)
    yield* wake.requested
  }).pipe(Effect.provide(reaping({ reaped: 7, requeued: 4, dead: 1, capHit: true, nextExpiryInMs: null }, seen)))
})

it.effect("a tick that reaped nothing counts nothing and leaves the claim loop asleep", () =>
  Effect.gen(function*() {
    const wake = yield* ClaimWake
    yield* Reaper.reapTick
    assert.deepStrictEqual([yield* reaped("requeued"), yield* reaped("idle")], [0, 0])
    const woken = yield* wake.requested.pipe(Effect.timeoutOption(0))
    assert.strictEqual(woken._tag, "None")
  }).pipe(Effect.provide(reaping({ reaped: 0, requeued: 0, dead: 0, capHit: false, nextExpiryInMs: null }, []))))

it.effect("the heartbeat prune deletes rows past the configured retention", () => {
  const retentions: Array<number> = []
  return Effect.gen(function*() {
    yield* Reaper.pruneHeartbeats
    assert.deepStrictEqual(retentions, [3_600_000])
  }).pipe(Effect.provide(Layer.mergeAll(
    Layer.succeed(Heartbeats, Heartbeats.of({
      beat: () => Effect.void,
      list: () => Effect.succeed([]),
      prune: (retentionMs) => Effect.sync(() => retentions.push(retentionMs)).pipe(Effect.as(2))
    })),
    WorkerConfig.layerWith({ heartbeatRetentionMs: 3_600_000 })
  )))
})

it.effect("the reaper sleeps until the first held lease expires; idle, until a signal arms it a TTL later or a reconnect", () => {
  const at: Array<number> = []
  const answers: Array<number | null> = []
  return Effect.gen(function*() {
    const signals = yield* PubSub.unbounded<CommandSignal>()
    const resyncs = yield* PubSub.unbounded<Resync>()
    const env = Layer.mergeAll(
      stubLeaseStore({
        reapExpired: () =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            Effect.sync(() => {
              at.push(now)
              return { reaped: 0, requeued: 0, dead: 0, capHit: false, nextExpiryInMs: answers.shift() ?? null }
            }))
      }),
      Layer.succeed(Heartbeats, Heartbeats.of({ beat: () => Effect.void, list: () => Effect.succeed([]), prune: () => Effect.succeed(0) })),
      Layer.succeed(ChangeFeed, ChangeFeed.of({
        sessionChanges: Effect.succeed(Stream.never),
        commandSignals: Effect.map(PubSub.subscribe(signals), Stream.fromSubscription),
        notifyCommand: () => Effect.void,
        revocations: Effect.succeed(Stream.never),
        workflowChanges: Effect.succeed(Stream.never),
        listeners: Effect.succeed([]),
        resyncs: Effect.map(PubSub.subscribe(resyncs), Stream.fromSubscription)
      })),
      Metrics.layerTest("worker"),
      ClaimWake.layer,
      WorkerConfig.layerWith({ leaseTtlMs: 15_000, idleBackstopMs: 300_000 })
    )
    yield* Effect.gen(function*() {
      // First reap at start: a lease held somewhere expires in 12 s.
      answers.push(12_000)
      yield* Effect.forkScoped(Reaper.run)
      yield* settle
      assert.deepStrictEqual(at, [0])
      yield* TestClock.adjust(12_004)
      yield* settle
      assert.deepStrictEqual(at, [0], "asleep until the lease expires (+5 ms)")
      yield* TestClock.adjust(1)
      yield* settle
      assert.deepStrictEqual(at, [0, 12_005], "reaped when the lease expired, not a TTL/3 tick later")
      // Nothing held any more: the idle backstop, until a command signal arms it a lease TTL later.
      yield* TestClock.adjust(60_000)
      yield* settle
      assert.strictEqual(at.length, 2, "idle: no reap")
      yield* PubSub.publish(signals, { kind: "prompt", sessionId: "ses_x" })
      yield* settle
      yield* TestClock.adjust(15_004)
      yield* settle
      assert.strictEqual(at.length, 2)
      yield* TestClock.adjust(1)
      yield* settle
      assert.deepStrictEqual(at.slice(2), [12_005 + 60_000 + 15_005], "a lease claimed for that prompt is reaped by its TTL")
      // A reconnected listener (signals may have been lost): reap at once.
      yield* TestClock.adjust(1_000)
      yield* PubSub.publish(resyncs, { channel: "cowork_commands", lostAt: 0 })
      yield* settle
      assert.strictEqual(at.length, 4)
      yield* TestClock.adjust(300_000)
      yield* settle
      assert.strictEqual(at.length, 5, "the idle backstop")
    }).pipe(Effect.scoped, Effect.provide(env))
  })
})
