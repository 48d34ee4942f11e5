import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { Authentication, RequiredScopes } from "./ApiCore.ts"
import { QuotaLimits } from "./Quota.ts"

const Policy = Schema.Struct({
  authMode: Schema.Literals(["oidc", "local"]),
  /** The caller's org: its overrides over the defaults. */
  quotas: QuotaLimits,
  quotaDefaults: QuotaLimits,
  rateLimits: Schema.Struct({
    principalPerMinute: Schema.Number,
    orgPerMinute: Schema.Number,
    /** Each web replica enforces 1/replicas of the two limits above. */
    replicas: Schema.Number
  }),
  authBackoff: Schema.Struct({ failuresPerMinute: Schema.Number, blockMs: Schema.Number }),
  browserSessions: Schema.Struct({ idleMs: Schema.Number, absoluteMs: Schema.Number })
})
type Policy = typeof Policy.Type

/** `GET /api/admin/policy`: the limits the caller's org runs under. */
export class PolicyApi extends HttpApiGroup.make("policy")
  .add(HttpApiEndpoint.get("get", "/api/admin/policy", { success: Policy }))
  .middleware(Authentication)
  .annotate(RequiredScopes, ["admin", "operator"])
  .annotateMerge(OpenApi.annotations({ title: "Policy", description: "Effective quotas, request limits, auth mode" }))
{}
