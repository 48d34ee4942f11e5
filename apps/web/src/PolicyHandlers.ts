import { Api, CurrentPrincipal } from "@cowork/domain"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { BrowserAuth } from "./BrowserAuth.ts"
import { QuotaPolicy } from "./QuotaPolicy.ts"
import { RequestLimits } from "./RequestLimits.ts"

/** `GET /api/admin/policy`. */
export const layer = HttpApiBuilder.group(Api, "policy", Effect.fn(function*(handlers) {
  const quotas = yield* QuotaPolicy
  const limits = (yield* RequestLimits).settings
  const auth = (yield* BrowserAuth).settings
  return handlers.handle("get", () =>
    Effect.gen(function*() {
      const principal = yield* CurrentPrincipal
      return {
        authMode: auth.mode,
        quotas: yield* quotas.forOrg(principal.orgId),
        quotaDefaults: quotas.defaults,
        rateLimits: { principalPerMinute: limits.principalPerMinute, orgPerMinute: limits.orgPerMinute, replicas: limits.replicas },
        authBackoff: { failuresPerMinute: limits.authFailuresPerMinute, blockMs: limits.authBlockMs },
        browserSessions: { idleMs: auth.idleMs, absoluteMs: auth.absoluteMs }
      }
    }))
}))
