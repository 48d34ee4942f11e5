import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import type { TokenScope } from "./Auth.ts"
import { WorkerAdminApi } from "./AdminApi.ts"
import { ArtifactsApi } from "./ArtifactsApi.ts"
import { ByokApi } from "./ByokApi.ts"
import { ChannelsApi } from "./ChannelsApi.ts"
import { WebhooksApi, WorkflowsApi } from "./WorkflowsApi.ts"
import { Authentication, OperatorAuthentication, RequiredScopes, requiredScopes } from "./ApiCore.ts"
import * as ApiError from "./ApiError.ts"
import { ApiTokensApi } from "./ApiTokensApi.ts"
import { AuditApi } from "./AuditApi.ts"
import { AuthApi, ConfigApi, WorkspaceApi } from "./AuthApi.ts"
import { BoundedJson, Id, isStorableText, MessageCursor, PageLimit, SessionCursor, Text } from "./Input.ts"
import { MembersApi } from "./MembersApi.ts"
import { OrgAdminApi } from "./OrgAdminApi.ts"
import { QueueControlsApi } from "./QueueControlsApi.ts"
import { PolicyApi } from "./PolicyApi.ts"
import { UsageApi } from "./UsageApi.ts"
import { SessionAsksApi } from "./SessionAsksApi.ts"
import { ThreadsApi } from "./ThreadsApi.ts"
import { DEFAULT_VIEW_MESSAGES, MAX_IDEMPOTENCY_KEY_LENGTH, MAX_TITLE_LENGTH, MAX_VIEW_MESSAGES, Session, SessionStatus, SessionView } from "./Session.ts"
import { SessionEvent } from "./SessionEvent.ts"
import { Tags } from "./ThreadsApi.ts"

export * from "./ApiCore.ts"

// ---------------------------------------------------------------------------------------------------------------
// Health (no auth)

const Liveness = Schema.Struct({ ok: Schema.Literal(true), role: Schema.String, profileName: Schema.String })

export const ReadinessCheck = Schema.Struct({
  name: Schema.String,
  status: Schema.Literals(["ok", "error"]),
  detail: Schema.optional(Schema.String)
})
export type ReadinessCheck = typeof ReadinessCheck.Type

const readinessFields = {
  ok: Schema.Boolean,
  role: Schema.String,
  profileName: Schema.String,
  checks: Schema.Array(ReadinessCheck)
}
export const Readiness = Schema.Struct(readinessFields)
export type Readiness = typeof Readiness.Type

/** `/readyz` while a dependency is down or the process drains: the same body, status 503. */
export class NotReady extends Schema.Error<NotReady>("NotReady")(readinessFields, { httpApiStatus: 503 }) {}

class HealthApi extends HttpApiGroup.make("health", { topLevel: true })
  .add(
    HttpApiEndpoint.get("healthz", "/healthz", { success: Liveness }),
    HttpApiEndpoint.get("livez", "/livez", { success: Liveness }),
    HttpApiEndpoint.get("readyz", "/readyz", { success: Readiness, error: NotReady })
  )
  .annotateMerge(OpenApi.annotations({ title: "Health", description: "Liveness and readiness probes (no auth)" }))
{}

// ---------------------------------------------------------------------------------------------------------------
// Sessions (bearer token with scope `web` or `admin`)

const CreateSessionBody = Schema.Struct({
  title: Schema.optional(Text(MAX_TITLE_LENGTH)),
  profileName: Schema.optional(
    Schema.String.check(Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/))
  ),
  projectSource: Schema.optional(BoundedJson),
  /** Tags for the thread views (see `ThreadsApi`). */
  tags: Schema.optional(Tags)
})

/** `text` has no schema maximum: an over-long prompt is a 413 (see `MAX_PROMPT_LENGTH`), not a 400. */
const PromptBody = Schema.Struct({
  text: Schema.String.check(Schema.isMinLength(1), isStorableText),
  /** The agent to run the prompt with (opencode's `build`, `plan`, or one the workspace defines). */
  agent: Schema.optional(Schema.String.check(Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/))),
  /**
   * While a prompt is queued or running: `enqueue` (default) runs this one after it, `reject` answers 409, `interrupt`
   * stops the running turn (its output so far kept, `session.idle` outcome `interrupted`) and queues this one.
   */
  multitaskStrategy: Schema.optional(Schema.Literals(["enqueue", "reject", "interrupt"])),
  idempotencyKey: Schema.optional(Text(MAX_IDEMPOTENCY_KEY_LENGTH).check(Schema.isMinLength(1)))
})

const SessionEnvelope = Schema.Struct({ session: Session })

export const SessionPage = Schema.Struct({
  sessions: Schema.Array(Session),
  nextCursor: Schema.NullOr(Schema.String),
  totalEstimate: Schema.Number
})

const CommandAccepted = Schema.Struct({ commandId: Schema.String })

const MAX_PAGE_SIZE = 100
export const DEFAULT_PAGE_SIZE = 50

const ListSessionsQuery = {
  limit: Schema.optional(PageLimit(MAX_PAGE_SIZE)),
  cursor: Schema.optional(SessionCursor),
  status: Schema.optional(SessionStatus),
  profileName: Schema.optional(Text(64)),
  q: Schema.optional(Text(200))
}

/** `GET /api/sessions/:id/view`: how many of the newest messages (`DEFAULT_VIEW_MESSAGES`), and before which. */
const SessionViewQuery = {
  limit: Schema.optional(PageLimit(MAX_VIEW_MESSAGES)),
  cursor: Schema.optional(MessageCursor)
}

/** `snapshot.required`: the cursor is older than the retained log; reload the view, then resume after it. */
export const SnapshotRequired = Schema.Struct({
  reason: Schema.String,
  afterSequence: Schema.Number,
  earliestSequence: Schema.Number,
  latestSequence: Schema.Number
})
export type SnapshotRequired = typeof SnapshotRequired.Type

/** A change to one of the org's sessions, as `GET /api/events` carries it (`event: session.changed`). */
const SessionChangedEvent = Schema.Struct({ sessionId: Schema.String, lastSequence: Schema.Number })

const sessionId = { id: Id }

class SessionsApi extends HttpApiGroup.make("sessions")
  .add(
    HttpApiEndpoint.post("create", "/api/sessions", {
      payload: CreateSessionBody,
      success: SessionEnvelope.pipe(HttpApiSchema.status(201)),
      error: ApiError.BadRequest
    }),
    HttpApiEndpoint.get("list", "/api/sessions", {
      query: ListSessionsQuery,
      success: SessionPage,
      error: ApiError.BadRequest
    }),
    HttpApiEndpoint.get("get", "/api/sessions/:id", {
      params: sessionId,
      success: SessionEnvelope,
      error: ApiError.NotFound
    }),
    HttpApiEndpoint.get("view", "/api/sessions/:id/view", {
      params: sessionId,
      query: SessionViewQuery,
      success: SessionView,
      error: [ApiError.BadRequest, ApiError.NotFound]
    }).annotate(
      OpenApi.Description,
      `The projected view: status, pending asks and the newest \`limit\` messages (default ${DEFAULT_VIEW_MESSAGES}, at most ${MAX_VIEW_MESSAGES}), oldest first. \`nextCursor\` (null at the first message) pages to the older ones: \`?cursor=<nextCursor>\`. \`projectedSequence\` is the SSE resume cursor (\`?after=\`) whatever page the view holds.`
    ),
    HttpApiEndpoint.post("prompt", "/api/sessions/:id/prompt", {
      params: sessionId,
      payload: PromptBody,
      success: CommandAccepted.pipe(HttpApiSchema.status(202)),
      error: [ApiError.BadRequest, ApiError.NotFound, ApiError.Conflict, ApiError.PayloadTooLarge, ApiError.RateLimited]
    }),
    // A queue control operators use too (API contract: operator section), besides the session's own users.
    HttpApiEndpoint.post("abort", "/api/sessions/:id/abort", {
      params: sessionId,
      success: CommandAccepted.pipe(HttpApiSchema.status(202)),
      error: ApiError.NotFound
    }).annotate(RequiredScopes, ["web", "admin", "operator"]).annotate(
      OpenApi.Description,
      "Cancels the session's pending commands (each gets a `command.cancelled` event `{commandId, kind, reason, abortCommandId}` on the session's stream), marks it aborted (later prompts 409) and queues an abort command that stops the running turn (`session.aborted`). Aborting again returns the same command."
    ),
    HttpApiEndpoint.get("events", "/api/sessions/:id/events", {
      params: sessionId,
      query: { after: Schema.optional(Text(32)) },
      success: HttpApiSchema.StreamSse({ data: SessionEvent }),
      error: [ApiError.BadRequest, ApiError.NotFound, ApiError.Conflict, ApiError.RateLimited, ApiError.Unavailable]
    }).annotate(OpenApi.Description, "SSE: `id: <sequence>`, `event: <type>`, `data: <SessionEvent>`; resume with `?after=N` (wins) or `Last-Event-ID`; a pruned cursor gets `event: snapshot.required`, a cursor ahead of the log 409."),
    HttpApiEndpoint.get("workspaceEvents", "/api/events", {
      success: HttpApiSchema.StreamSse({ data: SessionChangedEvent }),
      error: [ApiError.RateLimited, ApiError.Unavailable]
    }).annotate(OpenApi.Description, "SSE of the caller's org: `event: session.changed` whenever one of its sessions' logs grows.")
  )
  .middleware(Authentication)
  .annotate(RequiredScopes, ["web", "admin"])
  .annotateMerge(OpenApi.annotations({ title: "Sessions", description: "Create, list, prompt, abort and stream sessions" }))
{}

// ---------------------------------------------------------------------------------------------------------------
// Operator (bearer token with scope `operator`; tenant scopes get 403)

const HeartbeatCounts = Schema.Struct({
  workers: Schema.Number,
  schedulers: Schema.Number,
  freshWorkers: Schema.Number,
  freshSchedulers: Schema.Number
})

export const RuntimeStatus = Schema.Struct({
  role: Schema.String,
  profileName: Schema.String,
  /** A fresh, active worker exists: prompts sent now will run. */
  canExecute: Schema.Boolean,
  /** `in_process` when this process runs a worker too (`cowork up`), else `external_workers`. */
  commandProcessing: Schema.Literals(["in_process", "external_workers"]),
  checkpoints: Schema.Struct({ enabled: Schema.Boolean }),
  /** The agent runtimes fresh workers run (`scripted`, `opencode`), from their `runtime:<kind>` capability. */
  runtime: Schema.Struct({ kinds: Schema.Array(Schema.String) }),
  heartbeats: HeartbeatCounts
})
export type RuntimeStatus = typeof RuntimeStatus.Type

const WorkerHeartbeatView = Schema.Struct({
  workerId: Schema.String,
  role: Schema.Literals(["worker", "scheduler"]),
  poolId: Schema.NullOr(Schema.String),
  status: Schema.String,
  version: Schema.String,
  region: Schema.NullOr(Schema.String),
  capabilities: Schema.Array(Schema.String),
  currentLoad: Schema.Number,
  activeWorkIds: Schema.Array(Schema.String),
  lastSeenAt: Schema.String,
  ageMs: Schema.Number,
  fresh: Schema.Boolean
})

const HeartbeatList = Schema.Struct({ heartbeats: Schema.Array(WorkerHeartbeatView) })

const QueueDiagnostics = Schema.Struct({
  depthEstimate: Schema.Number,
  depthCapped: Schema.Boolean,
  scanLimit: Schema.Number,
  oldestCommandAgeMs: Schema.Number,
  maxProjectionLagEvents: Schema.Number
})

const LeaseDiagnostics = Schema.Struct({
  /** Leases held and unexpired, by the database clock. */
  held: Schema.Number,
  /** Leases still owned but past `expires_at`: the reaper's backlog. */
  expiredUnreaped: Schema.Number,
  /** This process's counters since start (a split web role runs no worker: zeros). */
  counters: Schema.Record(Schema.String, Schema.Number)
})

export const Diagnostics = Schema.Struct({
  generatedAt: Schema.String,
  redaction: Schema.Literal("secrets-redacted"),
  runtime: Schema.Struct({
    ...RuntimeStatus.fields,
    version: Schema.String,
    nodeVersion: Schema.String,
    uptimeSeconds: Schema.Number
  }),
  readiness: Readiness,
  heartbeats: Schema.Array(WorkerHeartbeatView),
  queues: QueueDiagnostics,
  leases: LeaseDiagnostics,
  byok: Schema.Struct({ status: Schema.String, providers: Schema.Array(Schema.Unknown), note: Schema.String }),
  gateway: Schema.Struct({
    status: Schema.String,
    note: Schema.String,
    /** Channel deliveries by status (the caller's org; every org's for a platform operator). */
    deliveries: Schema.optional(Schema.Record(Schema.String, Schema.Number))
  }),
  links: Schema.Record(Schema.String, Schema.String)
})
export type Diagnostics = typeof Diagnostics.Type

const ProjectionStatusView = Schema.Struct({
  sessionId: Schema.String,
  status: SessionStatus,
  lastSequence: Schema.Number,
  projectedSequence: Schema.Number,
  lagEvents: Schema.Number,
  earliestSequence: Schema.Number,
  messageRows: Schema.Number,
  expectedMessageRows: Schema.Number,
  expectedStatus: SessionStatus,
  consistent: Schema.Boolean
})

const ProjectionRepairResult = Schema.Struct({
  before: ProjectionStatusView,
  after: ProjectionStatusView,
  changed: Schema.Boolean
})

/** The Prometheus text exposition format. */
const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
const PrometheusText = Schema.String.pipe(HttpApiSchema.asText({ contentType: PROMETHEUS_CONTENT_TYPE }))

class OperatorApi extends HttpApiGroup.make("operator")
  .add(
    HttpApiEndpoint.get("runtimeStatus", "/api/runtime/status", { success: RuntimeStatus }),
    HttpApiEndpoint.get("heartbeats", "/api/workers/heartbeats", { success: HeartbeatList }),
    HttpApiEndpoint.get("diagnostics", "/api/diagnostics", { success: Diagnostics })
      .annotate(OpenApi.Description, "A redacted support bundle: runtime, readiness, heartbeats, queue and lease counters, links."),
    HttpApiEndpoint.get("apiMetrics", "/api/metrics", { success: PrometheusText }),
    HttpApiEndpoint.get("metrics", "/metrics", { success: PrometheusText }),
    HttpApiEndpoint.get("projectionStatus", "/api/sessions/:id/projection-status", {
      params: sessionId,
      success: ProjectionStatusView,
      error: ApiError.NotFound
    }),
    HttpApiEndpoint.post("projectionRepair", "/api/sessions/:id/projection-repair", {
      params: sessionId,
      success: ProjectionRepairResult,
      error: [ApiError.NotFound, ApiError.Conflict]
    }).annotate(OpenApi.Description, "Rebuilds the projection from the event log in one transaction; idempotent.")
  )
  .middleware(OperatorAuthentication)
  .annotate(RequiredScopes, ["operator"])
  .annotateMerge(OpenApi.annotations({ title: "Operator", description: "Runtime status, heartbeats, diagnostics, metrics, projections (operator tokens only)" }))
{}

export class Api extends HttpApi.make("cowork-cloud")
  .add(HealthApi)
  .add(SessionsApi)
  .add(OperatorApi)
  .add(WorkerAdminApi)
  .add(ArtifactsApi)
  .add(ByokApi)
  .add(WorkflowsApi)
  .add(WebhooksApi)
  .add(AuthApi).add(ConfigApi).add(WorkspaceApi).add(MembersApi).add(AuditApi).add(PolicyApi).add(UsageApi)
  .add(ApiTokensApi)
  .add(ChannelsApi)
  .add(SessionAsksApi)
  .add(ThreadsApi)
  .add(OrgAdminApi)
  .add(QueueControlsApi)
  .annotateMerge(OpenApi.annotations({ title: "Cowork Cloud API" }))
{}

/** Who a route admits: `none` (no auth), `org` (tenant: org principals only), `operator` (org principals and platform operators). */
type RouteAudience = "none" | "org" | "operator"

export interface AuthorizationRow {
  readonly group: string
  readonly name: string
  readonly method: string
  readonly path: string
  readonly audience: RouteAudience
  readonly scopes: ReadonlyArray<TokenScope>
}

/** The authorization table derived from the API definition: `METHOD path → audience, scopes` (`[]` = no auth). */
export const authorizationTable = (): ReadonlyArray<AuthorizationRow> => {
  const rows: Array<AuthorizationRow> = []
  for (const group of Object.values(Api.groups)) {
    for (const endpoint of Object.values(group.endpoints)) {
      const audience: RouteAudience = endpoint.middlewares.has(OperatorAuthentication)
        ? "operator"
        : endpoint.middlewares.has(Authentication)
        ? "org"
        : "none"
      rows.push({
        group: group.identifier,
        name: endpoint.identifier,
        method: endpoint.method,
        path: endpoint.path,
        audience,
        scopes: audience === "none" ? [] : requiredScopes(group.annotations, endpoint.annotations)
      })
    }
  }
  return rows
}
