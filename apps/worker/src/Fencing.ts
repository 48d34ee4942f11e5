import type { StaleOwner } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { Effect } from "effect"

/** Counts and logs an owner write the store refused because the lease is no longer live; never applied. */
const refused = (error: StaleOwner, commandId?: string) =>
  Effect.gen(function*() {
    const metrics = yield* Metrics
    yield* metrics.inc("open_cowork_cloud_worker_stale_owner_rejections_total", { operation: error.operation })
    yield* Effect.logWarning("stale owner: write refused, not applied")
  }).pipe(
    Effect.annotateLogs({ session_id: error.sessionId, epoch: error.epoch, command_id: commandId, operation: error.operation })
  )

/** An owner write (fenced by the lease in the store): a `StaleOwner` refusal is counted and logged, then fails on. */
export const fenced = <A, R>(write: Effect.Effect<A, StaleOwner, R>, commandId?: string) =>
  write.pipe(Effect.tapError((error) => refused(error, commandId)))
