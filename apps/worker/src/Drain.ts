import { Metrics } from "@cowork/observability"
import { Effect, FiberMap, Option, Ref } from "effect"
import * as Heartbeat from "./Heartbeat.ts"
import { HeldSessions } from "./HeldSessions.ts"
import { SessionFibers } from "./SessionSupervisor.ts"
import { WorkerConfig } from "./WorkerConfig.ts"
import { WorkerStatus } from "./WorkerStatus.ts"

/**
 * The graceful drain, run when the worker's scope closes (SIGTERM): stop taking commands, let the held sessions
 * finish their active command within OPEN_COWORK_CLOUD_SHUTDOWN_GRACE_MS, then interrupt the rest (each session
 * fiber expires its lease as it ends, so another worker claims it).
 */
const drain = Effect.gen(function*() {
  const config = yield* WorkerConfig
  const status = yield* WorkerStatus
  const held = yield* HeldSessions
  const metrics = yield* Metrics
  const { fibers } = yield* SessionFibers
  return yield* Effect.gen(function*() {
    yield* Ref.set(status.draining, true)
    yield* Heartbeat.beat("draining")
    yield* Effect.logInfo("worker draining").pipe(Effect.annotateLogs({ active: held.size(), grace_ms: config.shutdownGraceMs }))
    const finished = yield* FiberMap.awaitEmpty(fibers).pipe(
      Effect.ignore,
      Effect.timeoutOption(config.shutdownGraceMs)
    )
    yield* metrics.inc("open_cowork_cloud_worker_shutdown_drains_total", {
      outcome: Option.isNone(finished) ? "grace_expired" : "completed"
    })
    if (Option.isNone(finished)) {
      yield* Effect.logWarning("shutdown grace elapsed; expiring remaining leases").pipe(
        Effect.annotateLogs({ sessions: [...held.sessionIds()] })
      )
      yield* FiberMap.clear(fibers)
    }
    yield* Effect.logInfo("worker drained")
  }).pipe(Effect.annotateLogs({ worker_id: config.workerId }))
})

/** Registers the drain as a finalizer of the caller's scope. */
export const onShutdown = Effect.addFinalizer(() => drain)
