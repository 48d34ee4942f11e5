import { Metrics } from "@cowork/observability"
import { ChangeFeed, type SchedulerOutlook, WorkflowStore } from "@cowork/services"
import { Clock, Effect, Queue, Ref, Stream } from "effect"
import { SchedulerConfig } from "./SchedulerConfig.ts"
import { SchedulerStatus } from "./SchedulerStatus.ts"
import { tick } from "./SchedulerTick.ts"

/** Due workflows counted by the outlook's bounded scan (the due-backlog gauges). */
const DUE_SCAN_LIMIT = 10_000

/**
 * How long the scheduler may sleep after reading `outlook`, in ms: until the next due slot, the earliest claim
 * expiry (a dead replica's claim to reap), the next outcome poll while a run is open (`msSinceTick` after the last
 * pass), or the backstop, whichever comes first; never sooner than `tickMs` after the last pass unless that pass
 * claimed a full batch (more may be due at once). 0: run a pass now.
 */
export const sleepAfter = (
  outlook: SchedulerOutlook,
  settings: { readonly tickMs: number; readonly backstopMs: number },
  last: { readonly msSinceTick: number; readonly fullBatch: boolean }
): number => {
  let wakeAt = outlook.now + settings.backstopMs
  if (outlook.nextDueAt !== null) wakeAt = Math.min(wakeAt, outlook.nextDueAt)
  if (outlook.claimExpiresAt !== null) wakeAt = Math.min(wakeAt, outlook.claimExpiresAt)
  if (outlook.openRuns) wakeAt = Math.min(wakeAt, outlook.now + settings.tickMs - last.msSinceTick)
  const due = Math.max(0, wakeAt - outlook.now)
  return last.fullBatch ? due : Math.max(due, settings.tickMs - last.msSinceTick)
}

/**
 * The scheduler's loop: ONE outlook read (which also sets the due-backlog gauges) decides whether a pass (`tick`)
 * is needed now; otherwise it sleeps until the next due slot, claim expiry or outcome poll, or the backstop
 * (`OPEN_COWORK_CLOUD_SCHEDULER_BACKSTOP_MS`), and is woken sooner by a workflow change (`NOTIFY` from whichever
 * process created or resumed a workflow or started a run) or a re-established listener. Idle, it reads once per
 * backstop. A failed read or pass is counted and logged, then retried after `tickMs`, never the end of the loop.
 */
export const run = Effect.gen(function*() {
  const config = yield* SchedulerConfig
  const status = yield* SchedulerStatus
  const metrics = yield* Metrics
  const store = yield* WorkflowStore
  const feed = yield* ChangeFeed
  const wake = yield* Queue.sliding<void>(1)
  const request = Queue.offer(wake, undefined).pipe(Effect.asVoid)
  yield* Effect.forkScoped(Stream.runForEach(yield* feed.workflowChanges, () => request))
  yield* Effect.forkScoped(Stream.runForEach(yield* feed.resyncs, () => request))

  let lastTickAt = Number.NEGATIVE_INFINITY
  let fullBatch = false
  const failed = (operation: "outlook" | "claim") => (cause: unknown) =>
    metrics.inc("open_cowork_cloud_scheduler_failures_total", { operation }).pipe(
      Effect.andThen(Effect.logError(`scheduler ${operation === "claim" ? "tick" : operation} failed`, cause)),
      Effect.as(config.tickMs)
    )

  /** One step: read the outlook, run a pass when one is due; returns how long to sleep. */
  const step = Effect.gen(function*() {
    const outlook = yield* store.outlook(DUE_SCAN_LIMIT)
    yield* metrics.set("open_cowork_cloud_scheduler_due_queue_depth", outlook.depth)
    yield* metrics.set("open_cowork_cloud_scheduler_oldest_due_age_ms", Math.round(outlook.oldestDueMs))
    const msSinceTick = (yield* Clock.currentTimeMillis) - lastTickAt
    const sleep = sleepAfter(outlook, config, { msSinceTick, fullBatch })
    if (sleep > 0) return sleep
    lastTickAt = yield* Clock.currentTimeMillis
    const report = yield* tick.pipe(Effect.catchCause((cause) => Effect.andThen(failed("claim")(cause), Effect.succeed(undefined))))
    if (report !== undefined) yield* Ref.update(status.ticks, (n) => n + 1)
    fullBatch = report !== undefined && report.claimed >= config.batchSize
    return 0
  }).pipe(Effect.catchCause(failed("outlook")))

  while (true) {
    if (yield* Ref.get(status.draining)) return
    const sleep = yield* step
    if (sleep > 0) yield* Effect.raceFirst(Queue.take(wake), Effect.sleep(sleep))
  }
})
