import { StaleOwner } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { assert, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import * as LeaseRenewal from "../src/LeaseRenewal.ts"
import { WorkerConfig } from "../src/WorkerConfig.ts"
import { lease, settle, stubLeaseStore } from "./support/StubStores.ts"

/** Moves the test clock, then lets the woken fibers run (and schedule their next sleep) before returning. */
const advance = (ms: number) => TestClock.adjust(ms).pipe(Effect.andThen(settle))

it.effect("renews every TTL/3 until the store refuses: then fails StaleOwner, counted as renewal_lost", () => {
  const renewals: Array<number> = []
  let refuse = false
  const stores = stubLeaseStore({
    renew: (l, ttl) =>
      Effect.suspend(() =>
        refuse
          ? Effect.fail(new StaleOwner({ sessionId: l.sessionId, epoch: l.epoch, operation: "renew" }))
          : Effect.sync(() => { renewals.push(ttl) })
      )
  })
  return Effect.gen(function*() {
    const metrics = yield* Metrics
    const renewing = yield* Effect.forkChild(LeaseRenewal.renewForever(lease()))
    yield* settle
    yield* advance(999)
    assert.deepStrictEqual(renewals, [])
    yield* advance(1)
    yield* advance(1_000)
    assert.deepStrictEqual(renewals, [3_000, 3_000])
    assert.strictEqual(yield* metrics.read("open_cowork_cloud_worker_lease_renewals_total"), 2)
    refuse = true
    yield* advance(1_000)
    const exit = yield* Fiber.await(renewing)
    assert.isTrue(Exit.isFailure(exit))
    assert.strictEqual(yield* metrics.read("open_cowork_cloud_worker_lease_denials_total", { reason: "renewal_lost" }), 1)
    assert.strictEqual(yield* metrics.read("open_cowork_cloud_worker_stale_owner_rejections_total", { operation: "renew" }), 1)
  }).pipe(Effect.provide(Layer.mergeAll(stores, Metrics.layerTest("worker"), WorkerConfig.layerWith({ leaseTtlMs: 3_000 }))))
})
