import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { Authentication, RequiredScopes } from "./ApiCore.ts"
import * as ApiError from "./ApiError.ts"
import { cursorOf, IsoTime, PageLimit } from "./Input.ts"
import { QuotaLimits } from "./Quota.ts"
import { decodeUsageCursor, UsageEventPage, UsageSummary } from "./Usage.ts"

const UsageCursor = cursorOf(decodeUsageCursor)

const UsageSummaryResponse = Schema.Struct({
  ...UsageSummary.fields,
  /** The org's effective quota limits (overrides over defaults). */
  quotas: QuotaLimits
})

export class UsageApi extends HttpApiGroup.make("usage")
  .add(
    HttpApiEndpoint.get("summary", "/api/usage/summary", {
      query: { since: Schema.optional(IsoTime), until: Schema.optional(IsoTime) },
      success: UsageSummaryResponse,
      error: ApiError.BadRequest
    }).annotate(OpenApi.Description, "Prompts, sessions created, artifact uploads and bytes in `[since, until)` (default: the last 24 hours), and the org's quota limits."),
    HttpApiEndpoint.get("events", "/api/usage/events", {
      query: { limit: Schema.optional(PageLimit(200)), cursor: Schema.optional(UsageCursor) },
      success: UsageEventPage,
      error: ApiError.BadRequest
    }).annotate(OpenApi.Description, "Usage events (prompts, artifact bytes), newest first, keyset-paginated.")
  )
  .middleware(Authentication)
  .annotate(RequiredScopes, ["web", "admin"])
  .annotateMerge(OpenApi.annotations({ title: "Usage", description: "What the org used, and its quotas" }))
{}
