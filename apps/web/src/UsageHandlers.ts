import { Api, BadRequest, CurrentPrincipal } from "@cowork/domain"
import { Usage } from "@cowork/services"
import { Clock, Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { QuotaPolicy } from "./QuotaPolicy.ts"

const DAY_MS = 86_400_000

/** `/api/usage/summary`, `/api/usage/events`: the caller's org only. */
export const layer = HttpApiBuilder.group(Api, "usage", Effect.fn(function*(handlers) {
  const usage = yield* Usage
  const quotas = yield* QuotaPolicy
  return handlers.handleAll({
    summary: ({ query }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        const now = yield* Clock.currentTimeMillis
        const until = query.until ?? new Date(now).toISOString()
        const since = query.since ?? new Date(Date.parse(until) - DAY_MS).toISOString()
        if (Date.parse(since) > Date.parse(until)) return yield* new BadRequest({ message: "`since` is after `until`", field: "since" })
        return { ...(yield* usage.summary(principal.orgId, { since, until })), quotas: yield* quotas.forOrg(principal.orgId) }
      }),
    events: ({ query }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return yield* usage.events(principal.orgId, { limit: query.limit ?? 50, cursor: query.cursor })
      })
  })
}))
