import type { QuotaLimits, QuotaName } from "@cowork/domain"
import { Context, Effect, Layer } from "effect"

export type QuotaOverrides = Partial<Record<QuotaName, number>>

/** Per-org overrides of the configured quota defaults (an operator raises or lowers one org's limits). */
export class Quotas extends Context.Service<Quotas, {
  readonly overrides: (orgId: string) => Effect.Effect<QuotaOverrides>
  /** `null` removes the override: the org is back on the default. */
  readonly setOverride: (orgId: string, quota: QuotaName, value: number | null) => Effect.Effect<void>
}>()("cowork/Quotas") {
  static readonly layerMemory = Layer.sync(Quotas, () => makeMemoryQuotas())
}

export const makeMemoryQuotas = (): Quotas["Service"] => {
  const byOrg = new Map<string, QuotaOverrides>()
  return Quotas.of({
    overrides: (orgId) => Effect.sync(() => ({ ...byOrg.get(orgId) })),
    setOverride: (orgId, quota, value) =>
      Effect.sync(() => {
        const current = { ...byOrg.get(orgId) }
        if (value === null) delete current[quota]
        else current[quota] = value
        byOrg.set(orgId, current)
      })
  })
}

/** The limits an org runs under: its overrides over the defaults. */
export const effectiveQuotas = (defaults: QuotaLimits, overrides: QuotaOverrides): QuotaLimits => ({ ...defaults, ...overrides })
