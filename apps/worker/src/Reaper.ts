import { Metrics } from "@cowork/observability"
import { ChangeFeed, Heartbeats, LeaseStore } from "@cowork/services"
import { Clock, Effect, Queue, Stream } from "effect"
import { ClaimWake } from "./ClaimWake.ts"
import { WorkerConfig } from "./WorkerConfig.ts"

/**
 * One reaper tick: recovers expired leases in bounded batches (counted by outcome, and the drain cap when hit),
 * then wakes the claim loop for the commands it put back. Returns how long until the first lease still held (by any
 * worker) expires (`null`: none is held). Failures are logged and answer the reaper interval: it tries again then.
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
    // More may be expired already: go again after the reaper interval.
    return config.reaperIntervalMs
  }
  return result.nextExpiryInMs
}).pipe(Effect.catchCause((cause) =>
  Effect.gen(function*() {
    const config = yield* WorkerConfig
    yield* Effect.logError("reaper tick failed", cause)
    return config.reaperIntervalMs
  })
))

/** How often heartbeat rows past the retention (days) are deleted. */
export const HEARTBEAT_PRUNE_INTERVAL_MS = 60 * 60_000

/** Deletes heartbeat rows older than the retention (dead processes' rows would otherwise stay forever). */
export const pruneHeartbeats = Effect.gen(function*() {
  const config = yield* WorkerConfig
  const heartbeats = yield* Heartbeats
  const pruned = yield* heartbeats.prune(config.heartbeatRetentionMs)
  if (pruned > 0) yield* Effect.logInfo("old heartbeat rows pruned").pipe(Effect.annotateLogs({ pruned }))
}).pipe(Effect.catchCause((cause) => Effect.logWarning("heartbeat prune failed", cause)))

/** A few ms past a lease's expiry, so the reap finds it expired by the database clock. */
const EXPIRY_MARGIN_MS = 5

/**
 * The reaper sleeps until the first held lease expires (what `reapTick` answers), so a worker that dies is reaped
 * when its lease expires. With no lease held anywhere it sleeps for the idle backstop, but a command signal (a
 * worker may claim a lease for it now) brings its wake to a lease TTL from then, and a re-established listener
 * (signals may have been lost) makes it reap at once. Heartbeat rows past the retention are pruned every hour.
 */
export const run = Effect.gen(function*() {
  const config = yield* WorkerConfig
  const feed = yield* ChangeFeed
  const events = yield* Queue.sliding<"signal" | "resync">(16)
  yield* Effect.forkScoped(Stream.runForEach(yield* feed.commandSignals, () => Queue.offer(events, "signal")))
  yield* Effect.forkScoped(Stream.runForEach(yield* feed.resyncs, () => Queue.offer(events, "resync")))
  const reaping = Effect.gen(function*() {
    while (true) {
      const next = yield* reapTick
      let wakeAt = (yield* Clock.currentTimeMillis) + (next === null ? config.idleBackstopMs : Math.max(0, Math.ceil(next)) + EXPIRY_MARGIN_MS)
      while (true) {
        const remaining = wakeAt - (yield* Clock.currentTimeMillis)
        if (remaining <= 0) break
        const event = yield* Effect.raceFirst(Queue.take(events), Effect.as(Effect.sleep(remaining), "timeout" as const))
        if (event === "timeout" || event === "resync") break
        wakeAt = Math.min(wakeAt, (yield* Clock.currentTimeMillis) + config.leaseTtlMs + EXPIRY_MARGIN_MS)
      }
    }
  })
  return yield* Effect.all([
    reaping,
    Effect.forever(pruneHeartbeats.pipe(Effect.andThen(Effect.sleep(HEARTBEAT_PRUNE_INTERVAL_MS))))
  ], { concurrency: 2, discard: true })
})
