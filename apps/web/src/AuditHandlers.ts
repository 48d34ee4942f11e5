import { Api, CurrentPrincipal, type OrgPrincipal } from "@cowork/domain"
import { Audit, type AuditRecord } from "@cowork/services"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { CurrentRequestId } from "./RequestGuard.ts"

/** How a principal appears in audit rows: the person behind a browser session, else the token. */
export const actorOf = (principal: OrgPrincipal): string =>
  principal.browserSession === undefined ? `token:${principal.tokenId}` : `account:${principal.browserSession.accountId}`

/** Records an audit row with the current request's id. */
export const recordAudit = (event: Omit<AuditRecord, "requestId">) =>
  Effect.gen(function*() {
    const audit = yield* Audit
    yield* audit.record({ ...event, requestId: yield* CurrentRequestId })
  })

/** `GET /api/admin/audit`: the caller's org only. */
export const layer = HttpApiBuilder.group(Api, "audit", Effect.fn(function*(handlers) {
  const audit = yield* Audit
  return handlers.handle("list", ({ query }) =>
    Effect.gen(function*() {
      const principal = yield* CurrentPrincipal
      return yield* audit.list(principal.orgId, {
        limit: query.limit ?? 50,
        cursor: query.cursor,
        actor: query.actor,
        action: query.action,
        since: query.since,
        until: query.until
      })
    }))
}))
