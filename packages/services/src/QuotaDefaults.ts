import { DEFAULT_QUOTAS, type QuotaLimits, QUOTA_NAMES, type QuotaName } from "@cowork/domain"
import { Config, Effect } from "effect"

// Each variable named literally: operators (and `cowork launch validate`) find it in the code.
const VARIABLES: Record<QuotaName, string> = {
  prompts_per_hour: "OPEN_COWORK_CLOUD_QUOTA_PROMPTS_PER_HOUR",
  queued_commands: "OPEN_COWORK_CLOUD_QUOTA_QUEUED_COMMANDS",
  concurrent_sessions: "OPEN_COWORK_CLOUD_QUOTA_CONCURRENT_SESSIONS",
  active_workers: "OPEN_COWORK_CLOUD_QUOTA_ACTIVE_WORKERS",
  artifact_bytes_per_day: "OPEN_COWORK_CLOUD_QUOTA_ARTIFACT_BYTES_PER_DAY",
  workflow_runs_per_hour: "OPEN_COWORK_CLOUD_QUOTA_WORKFLOW_RUNS_PER_HOUR",
  channel_deliveries_per_hour: "OPEN_COWORK_CLOUD_QUOTA_CHANNEL_DELIVERIES_PER_HOUR"
}

/**
 * The quota defaults every role admits work under: `OPEN_COWORK_CLOUD_QUOTA_<NAME>` replaces the built-in default;
 * per-org overrides (the `Quotas` store) apply over these.
 */
export const quotaDefaults: Effect.Effect<QuotaLimits, Config.ConfigError> = Effect.gen(function*() {
  const values: Partial<Record<QuotaName, number>> = {}
  for (const name of QUOTA_NAMES) values[name] = yield* Config.Int(VARIABLES[name]).pipe(Config.withDefault(DEFAULT_QUOTAS[name]))
  return { ...DEFAULT_QUOTAS, ...values }
})
