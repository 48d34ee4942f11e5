import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { Authentication, RequiredScopes } from "./ApiCore.ts"
import * as ApiError from "./ApiError.ts"
import { AuditPage, decodeAuditCursor } from "./Audit.ts"
import { cursorOf, IsoTime, PageLimit, Text } from "./Input.ts"

const AuditCursor = cursorOf(decodeAuditCursor)

/** `GET /api/admin/audit`: the org's audit log (an admin or operator token of the org, or an owner / admin browser session). */
export class AuditApi extends HttpApiGroup.make("audit")
  .add(
    HttpApiEndpoint.get("list", "/api/admin/audit", {
      query: {
        limit: Schema.optional(PageLimit(200)),
        cursor: Schema.optional(AuditCursor),
        actor: Schema.optional(Text(200)),
        action: Schema.optional(Text(100)),
        since: Schema.optional(IsoTime),
        until: Schema.optional(IsoTime)
      },
      success: AuditPage,
      error: ApiError.BadRequest
    }).annotate(
      OpenApi.Description,
      "Newest first, keyset-paginated (`nextCursor`); filters: `actor`, `action`, `since` (inclusive), `until` (exclusive). Sign-ins, logouts, member and role changes, session revocations, worker admin actions. Never a secret."
    )
  )
  .middleware(Authentication)
  .annotate(RequiredScopes, ["admin", "operator"])
  .annotateMerge(OpenApi.annotations({ title: "Audit", description: "Who did what, when" }))
{}
