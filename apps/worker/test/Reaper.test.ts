import { Metrics } from "@cowork/observability"
import { Heartbeats, type ReapOptions, type ReapResult } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { ClaimWake } from "../src/ClaimWake.ts"
import * as Reaper from "../src/Reaper.ts"
import { WorkerConfig } from "../src/WorkerConfig.ts"
import { stubLeaseStore } from "./support/StubStores.ts"

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
  }).pipe(Effect.provide(reaping({ reaped: 7, requeued: 4, dead: 1, capHit: true }, seen)))
})

it.effect("a tick that reaped nothing counts nothing and leaves the claim loop asleep", () =>
  Effect.gen(function*() {
    const wake = yield* ClaimWake
    yield* Reaper.reapTick
    assert.deepStrictEqual([yield* reaped("requeued"), yield* reaped("idle")], [0, 0])
    const woken = yield* wake.requested.pipe(Effect.timeoutOption(0))
    assert.strictEqual(woken._tag, "None")
  }).pipe(Effect.provide(reaping({ reaped: 0, requeued: 0, dead: 0, capHit: false }, []))))

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
