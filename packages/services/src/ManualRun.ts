import type { QuotaLimits } from "@cowork/domain"
import { Effect } from "effect"
import { effectiveQuotas, Quotas } from "./Quotas.ts"
import { WorkflowStore } from "./WorkflowStore.ts"

/**
 * A manual run of a workflow now, under the org's `workflow_runs_per_hour` (its override, else `defaults`): the one
 * path of `POST /api/workflows/:id/run` and `cowork admin workflow run`, so an operator's run is refused (`RateLimited`)
 * exactly where a member's would be. `force` (the CLI's explicit `--force`) skips the check; the run still counts
 * toward the hour's quota.
 */
export const startManualRun = (
  orgId: string,
  workflowId: string,
  options: { readonly defaults: QuotaLimits; readonly force?: boolean | undefined }
) =>
  Effect.gen(function*() {
    const runsPerHour = options.force === true
      ? undefined
      : effectiveQuotas(options.defaults, yield* (yield* Quotas).overrides(orgId)).workflow_runs_per_hour
    return yield* (yield* WorkflowStore).startRun(orgId, workflowId, { triggerType: "manual", runsPerHour })
  })
