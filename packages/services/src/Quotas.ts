import type { PromptQuota, QuotaLimits, QuotaName } from "@cowork/domain"
import { Context, Effect, Layer } from "effect"
import { MemoryDatabase, type MemoryTables } from "./MemoryDatabase.ts"

export type QuotaOverrides = Partial<Record<QuotaName, number>>

/** Per-org overrides of the configured quota defaults (an operator raises or lowers one org's limits). */
export class Quotas extends Context.Service<Quotas, {
  readonly overrides: (orgId: string) => Effect.Effect<QuotaOverrides>
  /** `null` removes the override: the org is back on the default. */
  readonly setOverride: (orgId: string, quota: QuotaName, value: number | null) => Effect.Effect<void>
}>()("cowork/Quotas") {
  /** Over the `MemoryDatabase`'s `orgQuotas`, which the memory `SessionStore` reads at prompt admission too. */
  static readonly layerMemory: Layer.Layer<Quotas, never, MemoryDatabase> = Layer.effect(
    Quotas,
    Effect.map(Effect.service(MemoryDatabase), (db) => makeMemoryQuotas(db))
  )
}

export const makeMemoryQuotas = (db: MemoryTables): Quotas["Service"] =>
  Quotas.of({
    overrides: (orgId) => Effect.sync(() => ({ ...db.orgQuotas.get(orgId) })),
    setOverride: (orgId, quota, value) =>
      Effect.sync(() => {
        const current = { ...db.orgQuotas.get(orgId) }
        if (value === null) delete current[quota]
        else current[quota] = value
        db.orgQuotas.set(orgId, current)
      })
  })

/** The limits an org runs under: its overrides over the defaults. */
export const effectiveQuotas = (defaults: QuotaLimits, overrides: QuotaOverrides): QuotaLimits => ({ ...defaults, ...overrides })

/**
 * A prompt admission's limits with the org's overrides applied: what the stores do inside the admission itself, so
 * the web role passes the configured defaults and never reads the overrides on its own. A check the defaults leave
 * out (`concurrentSessions` absent) stays out.
 */
export const promptQuotaWithOverrides = (defaults: PromptQuota, overrides: QuotaOverrides): PromptQuota => ({
  promptsPerHour: overrides.prompts_per_hour ?? defaults.promptsPerHour,
  queuedCommands: overrides.queued_commands ?? defaults.queuedCommands,
  concurrentSessions: defaults.concurrentSessions === undefined
    ? undefined
    : overrides.concurrent_sessions ?? defaults.concurrentSessions
})
