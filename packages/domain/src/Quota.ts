import { Schema } from "effect"

/** The per-org quotas enforced where work is admitted (atomically with the admission). */
export const QuotaName = Schema.Literals([
  "prompts_per_hour",
  "queued_commands",
  "concurrent_sessions",
  "active_workers",
  "artifact_bytes_per_day",
  "workflow_runs_per_hour",
  "channel_deliveries_per_hour"
])
export type QuotaName = typeof QuotaName.Type

export const QUOTA_NAMES: ReadonlyArray<QuotaName> = QuotaName.literals

export const QuotaLimits = Schema.Struct({
  prompts_per_hour: Schema.Number,
  queued_commands: Schema.Number,
  /** Sessions with a prompt pending or running at once; a prompt that would start one more is refused. */
  concurrent_sessions: Schema.Number,
  /** Registered, unretired workers in the org's own (self-hosted) pools. */
  active_workers: Schema.Number,
  /** Artifact bytes uploaded per UTC day. */
  artifact_bytes_per_day: Schema.Number,
  workflow_runs_per_hour: Schema.Number,
  /** Channel deliveries queued per clock hour (the gateway's outbox). */
  channel_deliveries_per_hour: Schema.Number
})
export type QuotaLimits = typeof QuotaLimits.Type

/** Defaults as the modelled system uses them; `OPEN_COWORK_CLOUD_QUOTA_<NAME>` replaces a default, overrides are per org. */
export const DEFAULT_QUOTAS: QuotaLimits = {
  prompts_per_hour: 600,
  queued_commands: 1_000,
  concurrent_sessions: 100,
  active_workers: 20,
  artifact_bytes_per_day: 10 * 1024 ** 3,
  workflow_runs_per_hour: 600,
  channel_deliveries_per_hour: 6_000
}

/**
 * What a prompt admission checks, in the same transaction as the insert: the configured defaults, over which the
 * store applies the org's overrides inside the admission (no separate read of them per prompt).
 */
export interface PromptQuota {
  readonly promptsPerHour: number
  readonly queuedCommands: number
  /** Sessions of the org with a pending or running prompt; absent: not checked. */
  readonly concurrentSessions?: number | undefined
}

/** The clock windows of the windowed quotas (fixed windows in `cloud_quota_windows`). */
export const QUOTA_WINDOW_MS: Partial<Record<QuotaName, number>> = {
  prompts_per_hour: 3_600_000,
  artifact_bytes_per_day: 86_400_000,
  workflow_runs_per_hour: 3_600_000,
  channel_deliveries_per_hour: 3_600_000
}
