import { Schema } from "effect"

/** The per-org quotas enforced where work is admitted (atomically with the admission). */
export const QuotaName = Schema.Literals(["prompts_per_hour", "queued_commands"])
export type QuotaName = typeof QuotaName.Type

export const QUOTA_NAMES: ReadonlyArray<QuotaName> = ["prompts_per_hour", "queued_commands"]

export const QuotaLimits = Schema.Struct({
  prompts_per_hour: Schema.Number,
  queued_commands: Schema.Number
})
export type QuotaLimits = typeof QuotaLimits.Type

/** Defaults as the modelled system uses them; `OPEN_COWORK_CLOUD_QUOTA_<NAME>` replaces a default, overrides are per org. */
export const DEFAULT_QUOTAS: QuotaLimits = { prompts_per_hour: 600, queued_commands: 1_000 }

/** What a prompt admission checks, in the same transaction as the insert. */
export interface PromptQuota {
  readonly promptsPerHour: number
  readonly queuedCommands: number
}
