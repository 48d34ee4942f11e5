import { Metrics } from "@cowork/observability"
import { WorkflowStore } from "@cowork/services"
import { Effect } from "effect"

/** Webhook replay keys are kept well past the ±5 minute signature window, then pruned in bounded batches. */
const WEBHOOK_REPLAY_KEY_RETENTION_MS = 60 * 60_000

/** How often the replay keys past the retention are pruned (a tenth of the retention: a key lives at most 66 min). */
const WEBHOOK_REPLAY_KEY_PRUNE_INTERVAL_MS = WEBHOOK_REPLAY_KEY_RETENTION_MS / 10

const BATCH = 1_000

/** Prunes old replay keys in batches of 1,000 until a batch comes back short; a failure is counted and logged. */
const pruneOnce = Effect.gen(function*() {
  const store = yield* WorkflowStore
  while ((yield* store.pruneWebhookDeliveries(WEBHOOK_REPLAY_KEY_RETENTION_MS, BATCH)) >= BATCH) {
    // More are due: keep going in bounded batches.
  }
}).pipe(
  Effect.catchCause((cause) =>
    Effect.flatMap(Effect.service(Metrics), (metrics) => metrics.inc("open_cowork_cloud_scheduler_failures_total", { operation: "prune" })).pipe(
      Effect.andThen(Effect.logWarning("webhook replay key prune failed", cause))
    ))
)

/** `pruneOnce` every `WEBHOOK_REPLAY_KEY_PRUNE_INTERVAL_MS`, forever (its own slow timer, not the scheduler's pass). */
export const run = Effect.forever(Effect.sleep(WEBHOOK_REPLAY_KEY_PRUNE_INTERVAL_MS).pipe(Effect.andThen(pruneOnce)))
