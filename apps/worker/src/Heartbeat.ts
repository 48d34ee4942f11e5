import { Metrics } from "@cowork/observability"
import { AgentRuntime, Heartbeats } from "@cowork/services"
import { Clock, Effect, Ref } from "effect"
import { HeldSessions } from "./HeldSessions.ts"
import { SessionCheckpoints } from "./SessionCheckpoints.ts"
import { WorkerConfig } from "./WorkerConfig.ts"
import { WorkerStatus } from "./WorkerStatus.ts"

export type HeartbeatStatus = "active" | "draining" | "stopped"

/** How often the heartbeat-age gauge is refreshed between beats. */
export const HEARTBEAT_AGE_SAMPLE_MS = 1_000

/** Writes the worker's heartbeat (load, held sessions, capabilities); a failure is logged, never fatal. */
export const beat = (status: HeartbeatStatus) =>
  Effect.gen(function*() {
    const config = yield* WorkerConfig
    const workerStatus = yield* WorkerStatus
    const held = yield* HeldSessions
    const checkpoints = yield* SessionCheckpoints
    const heartbeats = yield* Heartbeats
    const runtime = yield* AgentRuntime
    // `runtime:<kind>` tells operators (runtime status) which agent runtime this worker runs.
    const capabilities = [...config.capabilities, `runtime:${runtime.kind ?? "scripted"}`]
    yield* heartbeats.beat({
      workerId: config.workerId,
      role: "worker",
      poolId: null,
      status,
      version: config.version,
      region: config.region,
      // `checkpoints` tells operators (runtime status) that this worker saves and restores session state.
      capabilities: checkpoints.enabled ? [...capabilities, "checkpoints"] : capabilities,
      currentLoad: held.size(),
      activeWorkIds: [...held.sessionIds()],
      credential: config.credential
    })
    yield* Ref.set(workerStatus.lastHeartbeatAt, yield* Clock.currentTimeMillis)
  }).pipe(Effect.catchCause((cause) => Effect.logWarning("heartbeat failed", cause)))

/** `open_cowork_cloud_worker_heartbeat_age_ms`: time since the last heartbeat landed (0 before the first). */
export const sampleAge = Effect.gen(function*() {
  const metrics = yield* Metrics
  const workerStatus = yield* WorkerStatus
  const last = yield* Ref.get(workerStatus.lastHeartbeatAt)
  const now = yield* Clock.currentTimeMillis
  yield* metrics.set("open_cowork_cloud_worker_heartbeat_age_ms", last === undefined ? 0 : Math.max(0, now - last))
})

/**
 * Beats `active` now and every heartbeat interval (`draining` once shutdown began), samples the heartbeat age every
 * second, and beats `stopped` when the scope closes (after the drain, which was started later).
 */
export const start = Effect.gen(function*() {
  const config = yield* WorkerConfig
  const workerStatus = yield* WorkerStatus
  yield* Effect.addFinalizer(() => beat("stopped"))
  yield* beat("active")
  yield* Effect.forkScoped(Effect.forever(Effect.sleep(config.heartbeatIntervalMs).pipe(
    Effect.andThen(Effect.flatMap(Ref.get(workerStatus.draining), (draining) => beat(draining ? "draining" : "active")))
  )))
  yield* Effect.forkScoped(Effect.forever(sampleAge.pipe(Effect.andThen(Effect.sleep(HEARTBEAT_AGE_SAMPLE_MS)))))
})
