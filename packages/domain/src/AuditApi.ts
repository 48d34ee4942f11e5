import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { Authentication, RequiredScopes } from "./ApiCore.ts"
import * as ApiError from "./ApiError.ts"
import { AuditPage, decodeAuditCursor } from "./Audit.ts"
import { PageLimit, Text } from "./Input.ts"

const AuditCursor = Schema.String.annotate({ expected: "a cursor from a previous page's nextCursor" }).check(
  Schema.makeFilter<string>((cursor) => (cursor.length <= 40 && decodeAuditCursor(cursor) !== undefined) || "not a cursor this list returned")
)

const IsoTime = Schema.String.annotate({ expected: "an ISO 8601 time" }).check(
  Schema.makeFilter<string>((value) =>
    (value.length <= 40 && /^\d{4}-\d{2}-\d{2}T/.test(value) && !Number.isNaN(Date.parse(value))) || "not an ISO 8601 time")
)

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
