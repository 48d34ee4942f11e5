import { Metrics } from "@cowork/observability"
import { LeaseStore } from "@cowork/services"
import { Effect, Ref } from "effect"
import { ClaimWake } from "./ClaimWake.ts"
import { HeldSessions } from "./HeldSessions.ts"
import * as SessionSupervisor from "./SessionSupervisor.ts"
import { WorkerConfig } from "./WorkerConfig.ts"
import { WorkerStatus } from "./WorkerStatus.ts"

/** One claim: up to the free capacity, each claimed session started in its own fiber. Nothing while draining. */
export const claimPass = Effect.gen(function*() {
  const config = yield* WorkerConfig
  const status = yield* WorkerStatus
  const held = yield* HeldSessions
  const leases = yield* LeaseStore
  const metrics = yield* Metrics
  if (yield* Ref.get(status.draining)) return
  const free = config.concurrency - held.size()
  if (free <= 0) return
  const claimed = yield* leases.claim(config.workerId, free, config.leaseTtlMs, config.maxCommandAttempts, config.credential).pipe(
    metrics.time("open_cowork_cloud_runnable_session_claim_duration_ms")
  )
  if (claimed.length > 0) yield* metrics.inc("open_cowork_cloud_worker_lease_claims_total", claimed.length)
  for (const lease of claimed) yield* SessionSupervisor.start(lease)
}).pipe(
  Effect.uninterruptible,
  Effect.catchCause((cause) => Effect.logError("claim pass failed", cause))
)

/** Claims, then waits for a wake request (signal, release, reap) or the backstop poll; forever. */
export const run = Effect.gen(function*() {
  const { pollIntervalMs } = yield* WorkerConfig
  const wake = yield* ClaimWake
  return yield* Effect.forever(claimPass.pipe(Effect.andThen(Effect.raceFirst(wake.requested, Effect.sleep(pollIntervalMs)))))
})
