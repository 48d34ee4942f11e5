import { Metrics } from "@cowork/observability"
import { Heartbeats, LeaseStore } from "@cowork/services"
import { Effect } from "effect"
import { ClaimWake } from "./ClaimWake.ts"
import { WorkerConfig } from "./WorkerConfig.ts"

/**
 * One reaper tick: recovers expired leases in bounded batches (counted by outcome, and the drain cap when hit),
 * then wakes the claim loop for the commands it put back. Failures are logged; the next tick tries again.
 */
export const reapTick = Effect.gen(function*() {
  const config = yield* WorkerConfig
  const leases = yield* LeaseStore
  const metrics = yield* Metrics
  const wake = yield* ClaimWake
  const result = yield* leases.reapExpired({
    batchSize: config.reaperBatchSize,
    drainCap: config.reaperDrainCap,
    maxAttempts: config.maxCommandAttempts
  })
  if (result.reaped > 0) {
    const reaped = "open_cowork_cloud_worker_expired_leases_reaped_total"
    if (result.requeued > 0) yield* metrics.inc(reaped, { outcome: "requeued" }, result.requeued)
    if (result.dead > 0) yield* metrics.inc(reaped, { outcome: "dead" }, result.dead)
    const idle = result.reaped - result.requeued - result.dead
    if (idle > 0) yield* metrics.inc(reaped, { outcome: "idle" }, idle)
    yield* Effect.logInfo("expired leases reaped").pipe(Effect.annotateLogs({ ...result }))
    yield* wake.request
  }
  if (result.capHit) {
    yield* metrics.inc("open_cowork_cloud_worker_expired_lease_reaper_drain_cap_hits_total")
    yield* Effect.logWarning("reaper hit its drain cap").pipe(Effect.annotateLogs({ drain_cap: config.reaperDrainCap }))
  }
}).pipe(Effect.catchCause((cause) => Effect.logError("reaper tick failed", cause)))

/** How often heartbeat rows past the retention are deleted. */
export const HEARTBEAT_PRUNE_INTERVAL_MS = 60_000

/** Deletes heartbeat rows older than the retention (dead processes' rows would otherwise stay forever). */
export const pruneHeartbeats = Effect.gen(function*() {
  const config = yield* WorkerConfig
  const heartbeats = yield* Heartbeats
  const pruned = yield* heartbeats.prune(config.heartbeatRetentionMs)
  if (pruned > 0) yield* Effect.logInfo("old heartbeat rows pruned").pipe(Effect.annotateLogs({ pruned }))
}).pipe(Effect.catchCause((cause) => Effect.logWarning("heartbeat prune failed", cause)))

/** A reaper tick every reaper interval (lease TTL/3 by default), and a heartbeat prune every minute, forever. */
export const run = Effect.gen(function*() {
  const { reaperIntervalMs } = yield* WorkerConfig
  return yield* Effect.all([
    Effect.forever(Effect.sleep(reaperIntervalMs).pipe(Effect.andThen(reapTick))),
    Effect.forever(pruneHeartbeats.pipe(Effect.andThen(Effect.sleep(HEARTBEAT_PRUNE_INTERVAL_MS))))
  ], { concurrency: 2, discard: true })
})
