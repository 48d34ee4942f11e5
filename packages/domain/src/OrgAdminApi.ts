import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { OperatorAuthentication, RequiredScopes } from "./ApiCore.ts"
import * as ApiError from "./ApiError.ts"
import { Id } from "./Input.ts"

const Count = Schema.Number

/** What is still active for an org; after offboarding everything but `runningCommands` is 0 at once. */
export const OrgActivity = Schema.Struct({
  liveApiTokens: Count,
  liveBrowserSessions: Count,
  pendingCommands: Count,
  runningCommands: Count,
  openSessions: Count,
  activeWorkflows: Count,
  liveWorkerCredentials: Count,
  byokKeys: Count,
  /** API tokens with the `gateway` scope still accepted (also counted in `liveApiTokens`). */
  liveGatewayTokens: Count,
  /** Channel bindings not disabled. */
  activeChannelBindings: Count,
  /** Channel deliveries pending, failed (awaiting a retry) or claimed. */
  openDeliveries: Count
})

/** What offboarding does with the org's artifacts: keep them (the default) or delete their objects and rows. */
export const ArtifactRetentionPolicy = Schema.Literals(["retain", "delete"])
export type ArtifactRetentionPolicy = typeof ArtifactRetentionPolicy.Type

export const OffboardingArtifacts = Schema.Struct({
  policy: ArtifactRetentionPolicy,
  /** Artifacts deleted now (objects and rows), their bytes, and objects under the org's prefix with no row. */
  deleted: Count,
  deletedBytes: Count,
  strayObjects: Count,
  /** Artifacts the org still has (all of them under `retain`; 0 after `delete`). */
  remaining: Count
})
export type OffboardingArtifacts = typeof OffboardingArtifacts.Type

export const OffboardingResult = Schema.Struct({
  orgId: Schema.String,
  offboardedAt: Schema.String,
  ended: Schema.Struct({
    apiTokens: Count,
    browserSessions: Count,
    pendingCommands: Count,
    sessions: Count,
    workflows: Count,
    workers: Count,
    workerCredentials: Count,
    byokKeys: Count,
    /** Of `apiTokens`, those with the `gateway` scope. */
    gatewayTokens: Count,
    /** Bindings disabled (a gateway serves them no more). */
    channelBindings: Count,
    /** Open deliveries dead-lettered (`lastError` "the organization was offboarded"). */
    deliveries: Count
  }),
  remaining: OrgActivity,
  artifacts: OffboardingArtifacts,
  /** Nothing is active any more (prompts a worker was already running finish on their own: call again to see). */
  complete: Schema.Boolean
})
export type OffboardingResult = typeof OffboardingResult.Type

/**
 * Tenant offboarding (runbook "Tenant Offboarding") as a route: a platform operator offboards any org; an org's own
 * operator token (the owner token) only its own org (another org is a 404). Idempotent; audited as `org.offboarded`.
 */
export class OrgAdminApi extends HttpApiGroup.make("orgAdmin")
  .add(
    HttpApiEndpoint.post("offboard", "/api/admin/orgs/:id/offboard", {
      params: { id: Id },
      query: { artifacts: Schema.optional(ArtifactRetentionPolicy) },
      success: OffboardingResult,
      error: [ApiError.NotFound, ApiError.BadRequest, ApiError.Unavailable]
    }).annotate(
      OpenApi.Description,
      "Marks the org offboarded (no new token, browser session or prompt), revokes its API tokens, browser sessions and worker credentials, cancels pending commands, aborts sessions, archives workflows, deletes BYOK keys, disables channel bindings and dead-letters their open deliveries (gateway tokens are revoked with the API tokens); audit rows stay. `?artifacts=delete` deletes the org's artifact objects and rows (503 if the object store fails: the org is offboarded, call again to finish); the default `retain` keeps them. Reports what remains."
    )
  )
  .middleware(OperatorAuthentication)
  .annotate(RequiredScopes, ["operator"])
  .annotateMerge(OpenApi.annotations({ title: "Org admin", description: "Tenant lifecycle: offboarding" }))
{}
