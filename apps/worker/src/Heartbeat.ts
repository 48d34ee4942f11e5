import { Metrics } from "@cowork/observability"
import { AgentRuntime, Heartbeats } from "@cowork/services"
import { Clock, Effect, Ref } from "effect"
import { HeldSessions } from "./HeldSessions.ts"
import { SessionCheckpoints } from "./SessionCheckpoints.ts"
import { WorkerConfig } from "./WorkerConfig.ts"
import { WorkerStatus } from "./WorkerStatus.ts"

export type HeartbeatStatus = "active" | "draining" | "stopped"

/** How often the heartbeat-age gauge is refreshed between beats. */
const HEARTBEAT_AGE_SAMPLE_MS = 1_000

/**
 * How long until this worker beats again: the heartbeat interval while it holds a session or drains, the idle
 * heartbeat interval (longer) while it holds none. The row records it, so readers judge freshness by it.
 */
const currentInterval = Effect.gen(function*() {
  const config = yield* WorkerConfig
  const held = yield* HeldSessions
  const workerStatus = yield* WorkerStatus
  const busy = held.size() > 0 || (yield* Ref.get(workerStatus.draining))
  return busy ? config.heartbeatIntervalMs : Math.max(config.heartbeatIntervalMs, config.idleHeartbeatIntervalMs)
})

/** Writes the worker's heartbeat (load, held sessions, capabilities, its interval); a failure is logged, never fatal. */
export const beat = (status: HeartbeatStatus) =>
  Effect.gen(function*() {
    const config = yield* WorkerConfig
    const workerStatus = yield* WorkerStatus
    const held = yield* HeldSessions
    const checkpoints = yield* SessionCheckpoints
    const heartbeats = yield* Heartbeats
    const runtime = yield* AgentRuntime
    const metrics = yield* Metrics
    const intervalMs = yield* currentInterval
    yield* metrics.set("open_cowork_cloud_worker_heartbeat_interval_ms", intervalMs)
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
      credential: config.credential,
      intervalMs
    }).pipe(
      Effect.andThen(Effect.flatMap(Clock.currentTimeMillis, (now) => Ref.set(workerStatus.lastHeartbeatAt, now))),
      Effect.catchCause((cause) => Effect.logWarning("heartbeat failed", cause))
    )
    return intervalMs
  })

/** `open_cowork_cloud_worker_heartbeat_age_ms`: time since the last heartbeat landed (0 before the first). */
const sampleAge = Effect.gen(function*() {
  const metrics = yield* Metrics
  const workerStatus = yield* WorkerStatus
  const last = yield* Ref.get(workerStatus.lastHeartbeatAt)
  const now = yield* Clock.currentTimeMillis
  yield* metrics.set("open_cowork_cloud_worker_heartbeat_age_ms", last === undefined ? 0 : Math.max(0, now - last))
})

/**
 * Completes when the worker holds a session or drains, checked locally (no statement) every heartbeat interval: a
 * worker that becomes busy beats as soon as a busy worker would have.
 */
const becomesBusy = Effect.gen(function*() {
  const config = yield* WorkerConfig
  while ((yield* currentInterval) !== config.heartbeatIntervalMs) yield* Effect.sleep(config.heartbeatIntervalMs)
})

/**
 * Beats `active` now and then every interval it recorded (`draining` once shutdown began): the heartbeat interval
 * while it holds a session, the idle one while it holds none — an idle worker that claims a session beats within a
 * heartbeat interval with its new load. Samples the heartbeat age every second, and beats `stopped` when the scope closes (after the
 * drain, which was started later).
 */
export const start = Effect.gen(function*() {
  const workerStatus = yield* WorkerStatus
  yield* Effect.addFinalizer(() => Effect.asVoid(beat("stopped")))
  let interval = yield* beat("active")
  const config = yield* WorkerConfig
  yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
    yield* interval === config.heartbeatIntervalMs ? Effect.sleep(interval) : Effect.raceFirst(Effect.sleep(interval), becomesBusy)
    interval = yield* beat((yield* Ref.get(workerStatus.draining)) ? "draining" : "active")
  })))
  yield* Effect.forkScoped(Effect.forever(sampleAge.pipe(Effect.andThen(Effect.sleep(HEARTBEAT_AGE_SAMPLE_MS)))))
})
