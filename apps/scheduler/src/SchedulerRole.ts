import { SERVICE_VERSION } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { Heartbeats, WorkflowStore } from "@cowork/services"
import { Clock, Effect, Layer, Ref, Schedule } from "effect"
import { SchedulerConfig } from "./SchedulerConfig.ts"
import * as SchedulerLiveness from "./SchedulerLiveness.ts"
import { SchedulerStatus } from "./SchedulerStatus.ts"
import * as ReplayKeyPrune from "./ReplayKeyPrune.ts"
import * as SchedulerLoop from "./SchedulerLoop.ts"


/**
 * Heartbeats as `role: "scheduler"` every interval (`draining` once shutdown starts, `stopped` last), with the
 * age of the last successful beat as a gauge.
 */
const heartbeatLoop = Effect.gen(function*() {
  const heartbeats = yield* Heartbeats
  const config = yield* SchedulerConfig
  const status = yield* SchedulerStatus
  const metrics = yield* Metrics
  let lastBeat = yield* Clock.currentTimeMillis
  const beat = (state: string) =>
    heartbeats.beat({
      workerId: config.schedulerId,
      role: "scheduler",
      poolId: null,
      status: state,
      version: SERVICE_VERSION,
      region: null,
      capabilities: ["workflows"],
      currentLoad: 0,
      activeWorkIds: [],
      intervalMs: config.heartbeatIntervalMs
    }).pipe(
      Effect.andThen(Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => (lastBeat = now)))),
      Effect.catchCause(() => metrics.inc("open_cowork_cloud_scheduler_failures_total", { operation: "heartbeat" }))
    )
  yield* metrics.set("open_cowork_cloud_scheduler_heartbeat_interval_ms", config.heartbeatIntervalMs)
  yield* beat("active")
  yield* Effect.addFinalizer(() => beat("stopped"))
  yield* Effect.forkScoped(
    Effect.gen(function*() {
      yield* beat((yield* Ref.get(status.draining)) ? "draining" : "active")
      yield* metrics.set("open_cowork_cloud_scheduler_heartbeat_age_ms", (yield* Clock.currentTimeMillis) - lastBeat)
    }).pipe(Effect.repeat(Schedule.spaced(`${config.heartbeatIntervalMs} millis`)))
  )
})

/**
 * The scheduler role: heartbeats, the scheduler loop (sleeps until it has work) and the replay-key prune; on shutdown it stops claiming, releases the claims it holds
 * (another replica takes them at once) and logs `scheduler drained`. Needs `WorkflowStore`, `Heartbeats`,
 * `ChangeFeed`, `Metrics` and `SchedulerConfig`.
 */
export const layerCore = Layer.effectDiscard(Effect.gen(function*() {
  const store = yield* WorkflowStore
  const config = yield* SchedulerConfig
  const status = yield* SchedulerStatus
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      yield* Ref.set(status.draining, true)
      const released = yield* store.releaseClaims(config.schedulerId)
      yield* Effect.logInfo("scheduler drained").pipe(Effect.annotateLogs({ released_claims: released, scheduler_id: config.schedulerId }))
    })
  )
  yield* heartbeatLoop
  yield* Effect.forkScoped(SchedulerLoop.run)
  yield* Effect.forkScoped(ReplayKeyPrune.run)
  yield* Effect.logInfo("scheduler started").pipe(
    Effect.annotateLogs({ scheduler_id: config.schedulerId, tick_ms: config.tickMs, backstop_ms: config.backstopMs })
  )
})).pipe(Layer.provideMerge(SchedulerStatus.layer))

/** `layerCore` plus its probes and `/metrics` on OPEN_COWORK_CLOUD_LIVENESS_PORT (the split `scheduler` role). */
export const layer = SchedulerLiveness.layer.pipe(Layer.provideMerge(layerCore))
