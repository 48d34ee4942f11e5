import { Effect, Layer } from "effect"
import * as BacklogSampler from "./BacklogSampler.ts"
import { CheckpointCursors } from "./CheckpointCursor.ts"
import * as ClaimLoop from "./ClaimLoop.ts"
import { ClaimWake } from "./ClaimWake.ts"
import * as CommandSignals from "./CommandSignals.ts"
import * as Drain from "./Drain.ts"
import * as Heartbeat from "./Heartbeat.ts"
import { HeldSessions } from "./HeldSessions.ts"
import * as Reaper from "./Reaper.ts"
import { SessionCheckpoints } from "./SessionCheckpoints.ts"
import { SessionFibers } from "./SessionSupervisor.ts"
import { WarmRuntimes } from "./WarmRuntimes.ts"
import { WorkerConfig } from "./WorkerConfig.ts"
import * as WorkerLiveness from "./WorkerLiveness.ts"
import { WorkerStatus } from "./WorkerStatus.ts"

/**
 * The worker role: claims runnable sessions up to its capacity, runs each leased session's mailbox in order in a
 * fiber of its own (renewing the lease every TTL/3), reaps expired leases, beats its heartbeat, and drains on
 * shutdown. Every owner write is fenced by the lease; a refused one is counted and logged, never applied.
 *
 * Finalizers run in reverse order: stop claiming, reaping and following signals, drain the sessions, stop
 * beating, beat "stopped".
 */
const make = Effect.gen(function*() {
  const config = yield* WorkerConfig
  yield* Heartbeat.start
  yield* Drain.onShutdown
  yield* CommandSignals.follow
  yield* Effect.forkScoped(Reaper.run)
  yield* Effect.forkScoped(ClaimLoop.run)
  yield* Effect.logInfo("worker started").pipe(
    Effect.annotateLogs({ worker_id: config.workerId, concurrency: config.concurrency, lease_ttl_ms: config.leaseTtlMs })
  )
})

/** The worker role without its configuration; records into the process's `Metrics`, provides `WorkerStatus`. */
export const layerNoDeps = Layer.effectDiscard(make).pipe(
  Layer.provide(Layer.mergeAll(SessionFibers.layer, HeldSessions.layer, ClaimWake.layer, WarmRuntimes.layer, CheckpointCursors.layer)),
  Layer.provideMerge(WorkerStatus.layer),
  Layer.provide(SessionCheckpoints.layer)
)

/**
 * The worker role configured from the `OPEN_COWORK_CLOUD_*` environment, with its backlog sampler and (when
 * `OPEN_COWORK_CLOUD_LIVENESS_PORT` is set) its probe and metrics server. Needs the process's `Metrics`.
 */
export const layer = Layer.mergeAll(
  WorkerLiveness.layer.pipe(Layer.provideMerge(layerNoDeps)),
  BacklogSampler.layer
).pipe(Layer.provide(WorkerConfig.layer))
