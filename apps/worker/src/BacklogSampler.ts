import { Metrics } from "@cowork/observability"
import { ChangeFeed, CommandQueue, Projections, QUEUE_SCAN_LIMIT } from "@cowork/services"
import { Effect, Layer, Queue, Stream } from "effect"
import { WorkerConfig } from "./WorkerConfig.ts"

/**
 * Samples the shared backlog: queue depth (a bounded estimate), the oldest pending command's age, and the worst
 * projection lag — a poll interval after any command signal (traffic), and every idle backstop without one (the
 * figures do not move while nothing is queued). Every worker reports the same database-wide figures; dashboards
 * take `max`.
 */
export const layer = Layer.effectDiscard(Effect.gen(function*() {
  const config = yield* WorkerConfig
  const metrics = yield* Metrics
  const queue = yield* CommandQueue
  const projections = yield* Projections
  const feed = yield* ChangeFeed
  const sample = Effect.gen(function*() {
    const backlog = yield* queue.backlog(QUEUE_SCAN_LIMIT)
    yield* metrics.set("open_cowork_cloud_command_queue_depth_estimate", backlog.depthEstimate)
    yield* metrics.set("open_cowork_cloud_command_oldest_age_ms", Math.round(backlog.oldestAgeMs))
    yield* metrics.set("open_cowork_cloud_projection_lag_events", yield* projections.maxLag)
  }).pipe(Effect.catchCause((cause) => Effect.logWarning("backlog sample failed", cause)))
  const signals = yield* Queue.sliding<void>(1)
  yield* Effect.forkScoped(Stream.runForEach(yield* feed.commandSignals, () => Queue.offer(signals, undefined)))
  const traffic = Queue.take(signals).pipe(Effect.andThen(Effect.sleep(config.pollIntervalMs)))
  yield* Effect.forkScoped(Effect.forever(sample.pipe(
    Effect.andThen(Queue.clear(signals)),
    Effect.andThen(Effect.raceFirst(traffic, Effect.sleep(Math.max(config.pollIntervalMs, config.idleBackstopMs))))
  )))
}))
