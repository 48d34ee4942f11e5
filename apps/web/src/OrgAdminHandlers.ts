import { Api, CurrentCaller, NotFound, Unavailable } from "@cowork/domain"
import { applyArtifactRetention, Artifacts, Offboarding } from "@cowork/services"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { recordAudit } from "./AuditHandlers.ts"
import { TokenVerifier } from "./TokenVerifier.ts"

/**
 * `POST /api/admin/orgs/:id/offboard`: a platform operator offboards any org, an org's operator token only its own
 * (another org is a 404, like every tenant object). The org's cached tokens are dropped here at once; every other
 * web process drops them on the notification the offboarding transaction sends. Then the artifacts by retention
 * policy (`?artifacts=delete|retain`, default retain). Audited in the org's own log, with what was done to artifacts.
 */
export const layer = HttpApiBuilder.group(Api, "orgAdmin", Effect.fn(function*(handlers) {
  const offboarding = yield* Offboarding
  const verifier = yield* TokenVerifier
  const artifacts = yield* Artifacts

  return handlers.handle("offboard", ({ params, query }) =>
    Effect.gen(function*() {
      const caller = yield* CurrentCaller
      if (caller.kind === "org" && caller.orgId !== params.id) return yield* new NotFound({ message: `org ${params.id} not found` })
      const report = yield* offboarding.offboard(params.id)
      yield* verifier.forgetOrg(params.id)
      const complete = Object.values(report.remaining).every((count) => count === 0)
      const retention = yield* Effect.result(
        applyArtifactRetention(params.id, query.artifacts ?? "retain").pipe(Effect.provideService(Artifacts, artifacts))
      )
      yield* recordAudit({
        orgId: params.id,
        actor: caller.kind === "platform" ? `platform-token:${caller.tokenId}` : `token:${caller.tokenId}`,
        action: "org.offboarded",
        target: `org:${params.id}`,
        details: {
          ended: report.ended,
          complete,
          artifacts: retention._tag === "Success" ? retention.success : { policy: query.artifacts, failed: retention.failure._tag }
        }
      })
      if (retention._tag === "Failure") {
        return yield* new Unavailable({
          message: "the org is offboarded but the object store failed while deleting its artifacts; call again to finish",
          retryAfterSeconds: 5
        })
      }
      return { ...report, artifacts: retention.success, complete }
    }))
}))
