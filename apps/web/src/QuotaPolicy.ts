import { type PromptQuota, type QuotaLimits, QUOTA_NAMES, type QuotaName, type RateLimited } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { effectiveQuotas, quotaDefaults, Quotas } from "@cowork/services"
import { Context, Effect, Layer } from "effect"

/**
 * The org quotas the web role admits work under: `OPEN_COWORK_CLOUD_QUOTA_*` defaults, per-org overrides from the
 * `Quotas` store. Refusals (429 + Retry-After + retryAfterMs) are counted in
 * `open_cowork_cloud_quota_rejections_total{quota}`.
 */
export class QuotaPolicy extends Context.Service<QuotaPolicy, {
  readonly defaults: QuotaLimits
  readonly forOrg: (orgId: string) => Effect.Effect<QuotaLimits>
  /**
   * What a prompt admission checks: the configured defaults. The session store applies the org's overrides inside the
   * admission statement, so a prompt costs no separate read of them.
   */
  readonly promptQuota: PromptQuota
  /** Counts a quota refusal on its way out. */
  readonly counted: <A, E, R>(effect: Effect.Effect<A, E | RateLimited, R>) => Effect.Effect<A, E | RateLimited, R>
}>()("cowork/web/QuotaPolicy") {}

export const layer = Layer.effect(
  QuotaPolicy,
  Effect.gen(function*() {
    const quotas = yield* Quotas
    const metrics = yield* Metrics
    const defaults = yield* quotaDefaults
    const forOrg = (orgId: string) => Effect.map(quotas.overrides(orgId), (overrides) => effectiveQuotas(defaults, overrides))
    return QuotaPolicy.of({
      defaults,
      forOrg,
      promptQuota: {
        promptsPerHour: defaults.prompts_per_hour,
        queuedCommands: defaults.queued_commands,
        concurrentSessions: defaults.concurrent_sessions
      },
      counted: (effect) =>
        Effect.tapError(effect, (error) => {
          const quota = (error as { readonly _tag?: string; readonly details?: { readonly quota?: unknown } }).details?.quota
          return (error as { readonly _tag?: string })._tag === "RateLimited" && (QUOTA_NAMES as ReadonlyArray<unknown>).includes(quota)
            ? metrics.inc("open_cowork_cloud_quota_rejections_total", { quota: quota as QuotaName })
            : Effect.void
        })
    })
  })
)
