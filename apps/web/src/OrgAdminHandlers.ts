import { Api, CurrentCaller, NotFound } from "@cowork/domain"
import { Offboarding } from "@cowork/services"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { recordAudit } from "./AuditHandlers.ts"
import { TokenVerifier } from "./TokenVerifier.ts"

/**
 * `POST /api/admin/orgs/:id/offboard`: a platform operator offboards any org, an org's operator token only its own
 * (another org is a 404, like every tenant object). The org's cached tokens are dropped here at once; every other
 * web process drops them on the notification the offboarding transaction sends. Audited in the org's own log.
 */
export const layer = HttpApiBuilder.group(Api, "orgAdmin", Effect.fn(function*(handlers) {
  const offboarding = yield* Offboarding
  const verifier = yield* TokenVerifier

  return handlers.handle("offboard", ({ params }) =>
    Effect.gen(function*() {
      const caller = yield* CurrentCaller
      if (caller.kind === "org" && caller.orgId !== params.id) return yield* new NotFound({ message: `org ${params.id} not found` })
      const report = yield* offboarding.offboard(params.id)
      yield* verifier.forgetOrg(params.id)
      const complete = Object.values(report.remaining).every((count) => count === 0)
      yield* recordAudit({
        orgId: params.id,
        actor: caller.kind === "platform" ? `platform-token:${caller.tokenId}` : `token:${caller.tokenId}`,
        action: "org.offboarded",
        target: `org:${params.id}`,
        details: { ended: report.ended, complete }
      })
      return { ...report, complete }
    }))
}))
