import { Metrics } from "@cowork/observability"
import { effectiveQuotas, planSlots, Quotas, type WorkflowClaim, WorkflowStore } from "@cowork/services"
import { Clock, Effect } from "effect"
import { SchedulerConfig } from "./SchedulerConfig.ts"

/** What one tick did (tests and logs). */
interface TickReport {
  readonly claimed: number
  readonly started: number
  readonly duplicates: number
  readonly stale: number
}

/**
 * One scheduler pass: reap expired claims (bounded), claim due workflows, decide each one's slots with the pure
 * planner (catch-up window, overlap policy applied by the store), fire them under the claim, then move open runs to
 * their sessions' outcomes; `SchedulerLoop` decides when a pass is needed. Each org's `workflow_runs_per_hour` is read once per tick and
 * counted by the store as the slots fire; a slot past it is recorded as a cancelled run (counted as a quota rejection). A claim that went stale is counted and skipped; its slots
 * are decided again by whoever claims the workflow next, and the unique (workflow, slot) key makes that safe.
 */
export const tick = Effect.gen(function*() {
  const store = yield* WorkflowStore
  const metrics = yield* Metrics
  const config = yield* SchedulerConfig
  const quotas = yield* Quotas

  /** A failed stage is counted by operation and logged; the tick goes on with the next stage. */
  const counted = <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    operation: "reap" | "fire" | "renew" | "sync_outcomes",
    fallback: A
  ): Effect.Effect<A, never, R> =>
    Effect.catchCause(effect, (cause) =>
      metrics.inc("open_cowork_cloud_scheduler_failures_total", { operation }).pipe(
        Effect.andThen(Effect.logError(`scheduler ${operation} failed`, cause)),
        Effect.as(fallback)
      ))

  const reaped = yield* counted(store.reapExpiredClaims(config.reaperDrainCap), "reap", { reaped: 0, capHit: false })
  if (reaped.reaped > 0) yield* metrics.inc("open_cowork_cloud_scheduler_expired_claims_reaped_total", reaped.reaped)
  if (reaped.capHit) yield* metrics.inc("open_cowork_cloud_scheduler_expired_claim_reaper_drain_cap_hits_total")

  const claimedAt = yield* Clock.currentTimeMillis
  const { now, claims } = yield* store.claimDue(config.schedulerId, config.batchSize, config.claimTtlMs)
  if (claims.length > 0) yield* metrics.inc("open_cowork_cloud_scheduler_claims_total", claims.length)

  let started = 0
  let duplicates = 0
  let stale = 0
  let renewedAt = claimedAt
  /** Renews every claim of the batch once a third of the TTL has passed since the claim (or the last renewal). */
  const renewIfDue = Effect.gen(function*() {
    const at = yield* Clock.currentTimeMillis
    if (at - renewedAt <= config.claimTtlMs / 3) return
    renewedAt = at
    yield* Effect.forEach(claims, (held) =>
      counted(
        // A claim that went stale is refused again, and counted, when its slots are fired.
        Effect.catchTag(store.renewClaim(held, config.claimTtlMs), "StaleClaim", () => Effect.void),
        "renew",
        undefined
      ), { discard: true })
    yield* metrics.inc("open_cowork_cloud_scheduler_claim_renewals_total")
  })
  const runsPerHour = new Map<string, number>()
  const runsPerHourOf = (orgId: string) =>
    Effect.gen(function*() {
      const known = runsPerHour.get(orgId)
      if (known !== undefined) return known
      const limit = effectiveQuotas(config.quotaDefaults, yield* quotas.overrides(orgId)).workflow_runs_per_hour
      runsPerHour.set(orgId, limit)
      return limit
    })
  const fire = (held: WorkflowClaim) =>
    Effect.gen(function*() {
      yield* renewIfDue
      const plan = planSlots({
        triggers: held.triggers,
        cursor: held.cursor,
        now,
        catchUpWindowMs: held.catchUpWindowMs,
        catchUpMode: held.catchUpMode
      })
      const result = yield* store.fireSlots(held, plan, yield* runsPerHourOf(held.orgId))
      const skippedMissed = plan.skipped?.count ?? 0
      for (const run of result.started) {
        const lag = Date.parse(run.createdAt) - Date.parse(run.scheduledFor ?? run.createdAt)
        yield* metrics.observe("open_cowork_cloud_scheduler_run_start_lag_ms", Math.max(0, lag))
      }
      if (result.started.length > 0) {
        yield* metrics.inc("open_cowork_cloud_scheduler_runs_started_total", { trigger: "schedule" }, result.started.length)
        yield* metrics.inc("open_cowork_cloud_scheduler_slots_total", { outcome: "started" }, result.started.length)
      }
      if (result.buffered > 0) yield* metrics.inc("open_cowork_cloud_scheduler_slots_total", { outcome: "buffered" }, result.buffered)
      if (result.skippedByOverlap > 0) {
        yield* metrics.inc("open_cowork_cloud_scheduler_slots_total", { outcome: "skipped_overlap" }, result.skippedByOverlap)
      }
      if (result.skippedByQuota > 0) {
        yield* metrics.inc("open_cowork_cloud_scheduler_slots_total", { outcome: "skipped_quota" }, result.skippedByQuota)
        yield* metrics.inc("open_cowork_cloud_quota_rejections_total", { quota: "workflow_runs_per_hour" }, result.skippedByQuota)
      }
      if (skippedMissed > 0) yield* metrics.inc("open_cowork_cloud_scheduler_slots_total", { outcome: "skipped_missed" }, skippedMissed)
      if (result.duplicates > 0) yield* metrics.inc("open_cowork_cloud_scheduler_slots_total", { outcome: "duplicate" }, result.duplicates)
      started += result.started.length
      duplicates += result.duplicates
    }).pipe(
      Effect.catchTag("StaleClaim", (error) =>
        Effect.gen(function*() {
          stale++
          yield* metrics.inc("open_cowork_cloud_scheduler_failures_total", { operation: "stale_claim" })
          yield* Effect.logWarning("stale workflow claim refused").pipe(
            Effect.annotateLogs({ workflow_id: error.workflowId, epoch: error.epoch, operation: error.operation })
          )
        })),
      (firing) => counted(firing, "fire", undefined)
    )
  // Each workflow fires in its own short transaction; a few at once keep one replica's batch moving.
  yield* Effect.forEach(claims, fire, { concurrency: config.fireConcurrency, discard: true })

  const changed = yield* counted(store.syncRunOutcomes(config.outcomeBatch), "sync_outcomes", 0)
  if (changed > 0) yield* Effect.logDebug("workflow runs followed their sessions").pipe(Effect.annotateLogs({ runs: changed }))

  return { claimed: claims.length, started, duplicates, stale } satisfies TickReport
})
