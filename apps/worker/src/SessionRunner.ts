import type { Lease } from "@cowork/domain"
import { CommandQueue, LeaseStore } from "@cowork/services"
import { Effect, Option, Ref } from "effect"
import * as CommandRunner from "./CommandRunner.ts"
import { fenced } from "./Fencing.ts"
import type { HeldSession } from "./HeldSessions.ts"
import * as LeasedRuntime from "./LeasedRuntime.ts"
import * as LeaseRenewal from "./LeaseRenewal.ts"
import { WorkerStatus } from "./WorkerStatus.ts"

/**
 * Runs one leased session: restores its checkpoint, then its mailbox in order until it is empty (true: the lease
 * was released) or the worker drains (false unless the session was idle), renewing the lease meanwhile. Losing
 * the lease fails with `StaleOwner` and interrupts whatever runs.
 */
export const run = (lease: Lease, session: HeldSession) =>
  Effect.gen(function*() {
    const leases = yield* LeaseStore
    const queue = yield* CommandQueue
    const status = yield* WorkerStatus
    const runtime = yield* LeasedRuntime.acquire(lease)

    const mailbox = Effect.gen(function*() {
      // Restore before anything runs (the lease is renewed meanwhile): a failure ends this fiber with the
      // session's commands still pending, and the lease expired for the next claimer.
      yield* runtime.restore
      while (true) {
        if (yield* Ref.get(status.draining)) return yield* fenced(leases.releaseIfIdle(lease))
        // The command starts with its opening events in one write; it closes with its ack, releasing the lease in
        // the same write when nothing else is pending.
        const next = yield* fenced(queue.start(lease))
        if (Option.isNone(next)) {
          if (yield* fenced(leases.releaseIfIdle(lease))) {
            yield* runtime.keepWarm
            return true
          }
          continue
        }
        if (yield* CommandRunner.run(lease, next.value, session, runtime)) {
          yield* runtime.keepWarm
          return true
        }
      }
    })
    return yield* Effect.raceFirst(mailbox, LeaseRenewal.renewForever(lease))
  }).pipe(Effect.scoped)
