import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { Authentication, RequiredScopes } from "./ApiCore.ts"
import * as ApiError from "./ApiError.ts"
import { Id, PageLimit, SessionCursor } from "./Input.ts"
import {
  CreateWorkflowBody,
  WebhookSecret,
  WorkflowCreated,
  WorkflowDetail,
  WorkflowEnvelope,
  WorkflowPage,
  WorkflowRunEnvelope,
  WorkflowRunPage
} from "./Workflow.ts"

/** Keyset pages over workflows and runs: the cursor is an opaque id token, checked at the schema like sessions'. */
const pageQuery = {
  limit: Schema.optional(PageLimit(100)),
  cursor: Schema.optional(SessionCursor)
}

/** Tenant routes: every workflow belongs to the caller's org (another org's workflow is a 404). */
export class WorkflowsApi extends HttpApiGroup.make("workflows")
  .add(
    HttpApiEndpoint.post("create", "/api/workflows", {
      payload: CreateWorkflowBody,
      success: WorkflowCreated.pipe(HttpApiSchema.status(201)),
      error: [ApiError.BadRequest, ApiError.Unavailable]
    }).annotate(
      OpenApi.Description,
      "Creates a workflow. Schedules are `{type: one_time|daily|weekly|monthly, timezone, runAtHour, runAtMinute, dayOfWeek?, dayOfMonth?, startAt?}` or `{type: cron, expression (5 or 6 fields), timezone (IANA)}`. Webhook triggers' signing secrets are in `webhookSecrets`, shown only here."
    ),
    HttpApiEndpoint.get("list", "/api/workflows", { query: pageQuery, success: WorkflowPage, error: ApiError.BadRequest }),
    HttpApiEndpoint.get("get", "/api/workflows/:id", { params: { id: Id }, success: WorkflowDetail, error: ApiError.NotFound }),
    HttpApiEndpoint.post("run", "/api/workflows/:id/run", {
      params: { id: Id },
      success: WorkflowRunEnvelope.pipe(HttpApiSchema.status(202)),
      error: [ApiError.NotFound, ApiError.Conflict, ApiError.RateLimited]
    }).annotate(
      OpenApi.Description,
      "Starts a manual run now: a new session with the workflow's instructions as its prompt. 429 with `Retry-After` once the org's `workflow_runs_per_hour` is used up."
    ),
    HttpApiEndpoint.post("pause", "/api/workflows/:id/pause", { params: { id: Id }, success: WorkflowEnvelope, error: [ApiError.NotFound, ApiError.Conflict] }),
    HttpApiEndpoint.post("resume", "/api/workflows/:id/resume", { params: { id: Id }, success: WorkflowEnvelope, error: [ApiError.NotFound, ApiError.Conflict] }),
    HttpApiEndpoint.post("archive", "/api/workflows/:id/archive", { params: { id: Id }, success: WorkflowEnvelope, error: ApiError.NotFound }),
    HttpApiEndpoint.get("runs", "/api/workflows/:id/runs", {
      params: { id: Id },
      query: pageQuery,
      success: WorkflowRunPage,
      error: [ApiError.BadRequest, ApiError.NotFound]
    }),
    HttpApiEndpoint.post("rotateSecret", "/api/workflows/:id/triggers/:tid/rotate-secret", {
      params: { id: Id, tid: Id },
      success: WebhookSecret,
      error: [ApiError.NotFound, ApiError.Unavailable]
    }).annotate(OpenApi.Description, "Replaces a webhook trigger's signing secret; the new one is shown only in this response.")
  )
  .middleware(Authentication)
  .annotate(RequiredScopes, ["web", "admin"])
  .annotateMerge(OpenApi.annotations({ title: "Workflows", description: "Manual, scheduled and webhook-triggered runs" }))
{}

/** The largest webhook body accepted (413 above it). */
export const MAX_WEBHOOK_BODY_BYTES = 64 * 1024

/** Public, HMAC-signed trigger (no bearer token): the signature is the credential. */
export class WebhooksApi extends HttpApiGroup.make("webhooks")
  .add(
    HttpApiEndpoint.post("workflow", "/webhooks/workflows/:id", {
      params: { id: Id },
      payload: HttpApiSchema.StreamUint8Array({ contentType: "application/json" }),
      success: WorkflowRunEnvelope.pipe(HttpApiSchema.status(202)),
      error: [ApiError.BadRequest, ApiError.SignatureRefused, ApiError.NotFound, ApiError.Conflict, ApiError.PayloadTooLarge, ApiError.RateLimited]
    }).annotate(
      OpenApi.Description,
      "Headers `x-open-cowork-webhook-timestamp` (unix seconds, within ±5 min) and `x-open-cowork-webhook-signature` = `v1=` + hex HMAC-SHA256 of `v1:{timestamp}:{rawBody}` with the trigger's secret. Each signature is accepted once (409 on replay); the body (at most 64 KiB) becomes the run's `triggerPayload`."
    )
  )
  .annotateMerge(OpenApi.annotations({ title: "Webhooks", description: "Signed workflow triggers (no bearer token)" }))
{}
