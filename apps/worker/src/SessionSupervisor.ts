import type { Lease } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { ChangeFeed, LeaseStore } from "@cowork/services"
import { Cause, Context, Effect, Exit, FiberMap, Layer, Ref } from "effect"
import { ClaimWake } from "./ClaimWake.ts"
import { type HeldSession, HeldSessions } from "./HeldSessions.ts"
import * as SessionRunner from "./SessionRunner.ts"
import { WorkerConfig } from "./WorkerConfig.ts"
import { WorkerStatus } from "./WorkerStatus.ts"

/** The fibers of the sessions this worker holds, one per session id. */
export class SessionFibers extends Context.Service<SessionFibers, {
  readonly fibers: FiberMap.FiberMap<string>
}>()("cowork/worker/SessionFibers") {
  static readonly layer = Layer.effect(SessionFibers, Effect.map(FiberMap.make<string>(), (fibers) => SessionFibers.of({ fibers })))
}

const isStaleOwner = (cause: Cause.Cause<unknown>) =>
  cause.reasons.some((reason) => Cause.isFailReason(reason) && (reason.error as { _tag?: unknown })._tag === "StaleOwner")

/**
 * Runs the session and settles its lease when the fiber ends: released or lost leave it as it is; drained,
 * interrupted or crashed while holding it, the lease is expired so another worker claims at once.
 */
const supervise = (lease: Lease, session: HeldSession) =>
  Effect.gen(function*() {
    const metrics = yield* Metrics
    const leases = yield* LeaseStore
    const held = yield* HeldSessions
    const wake = yield* ClaimWake
    const status = yield* WorkerStatus
    const changeFeed = yield* ChangeFeed
    return yield* SessionRunner.run(lease, session).pipe(
      metrics.time("open_cowork_cloud_worker_loop_duration_ms"),
      Effect.onExit((exit) =>
        Effect.gen(function*() {
          const released = Exit.isSuccess(exit) && exit.value === true
          const lost = Exit.isFailure(exit) && isStaleOwner(exit.cause)
          const draining = yield* Ref.get(status.draining)
          if (!released && !lost) {
            const expired = yield* leases.expire(lease).pipe(
              Effect.as(true),
              Effect.catchTag("StaleOwner", () => Effect.succeed(false)),
              Effect.catchCause((cause) => Effect.logWarning("lease expiry failed", cause).pipe(Effect.as(false)))
            )
            // A drain hands its sessions over at once: the other workers claim on this signal, not on their next
            // poll or reaper tick. A crash is not signalled (this worker would claim the same session again).
            if (expired && draining) {
              yield* changeFeed.notifyCommand({ kind: "released", sessionId: lease.sessionId }).pipe(
                Effect.catchCause((cause) => Effect.logWarning("release signal failed; others claim on their next poll", cause))
              )
            }
          }
          if (Exit.isFailure(exit) && !lost && !Cause.hasInterruptsOnly(exit.cause)) {
            yield* Effect.logError("session fiber failed", exit.cause)
          }
          yield* held.forget(lease)
          yield* Effect.logDebug(released ? "lease released" : lost ? "lease lost" : "lease given up")
          // A crashed session is left to the backstop poll, so a persistent fault cannot spin the claim loop.
          if (!draining && (released || lost)) yield* wake.request
        })
      )
    )
  })

/** Holds a claimed lease and runs its session in a fiber of its own. */
export const start = (lease: Lease) =>
  Effect.gen(function*() {
    const held = yield* HeldSessions
    const { fibers } = yield* SessionFibers
    const { workerId } = yield* WorkerConfig
    const session = yield* held.hold(lease)
    yield* FiberMap.run(
      fibers,
      lease.sessionId,
      supervise(lease, session).pipe(Effect.annotateLogs({ session_id: lease.sessionId, epoch: lease.epoch, worker_id: workerId }))
    )
    yield* Effect.logDebug("session claimed").pipe(Effect.annotateLogs({ session_id: lease.sessionId, epoch: lease.epoch }))
  })
