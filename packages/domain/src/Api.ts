import { Context, Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, HttpApiSecurity, OpenApi } from "effect/http-api"
import type { Principal } from "./Auth.ts"
import { TokenScope } from "./Auth.ts"
import { MAX_IDEMPOTENCY_KEY_LENGTH, MAX_TITLE_LENGTH, Session, SessionStatus, SessionView } from "./Session.ts"
import { SessionEvent } from "./SessionEvent.ts"

/** The body of every error response: `{"error": {"code", "message", "details"?}}`. */
export const ErrorBody = Schema.Struct({
  code: Schema.String,
  message: Schema.String,
  details: Schema.optional(Schema.Record(Schema.String, Schema.Unknown))
})
export type ErrorBody = typeof ErrorBody.Type

export class ApiBadRequest extends Schema.Error<ApiBadRequest>("ApiBadRequest")({ error: ErrorBody }, { httpApiStatus: 400 }) {}
export class ApiUnauthorized extends Schema.Error<ApiUnauthorized>("ApiUnauthorized")({ error: ErrorBody }, { httpApiStatus: 401 }) {}
export class ApiForbidden extends Schema.Error<ApiForbidden>("ApiForbidden")({ error: ErrorBody }, { httpApiStatus: 403 }) {}
export class ApiNotFound extends Schema.Error<ApiNotFound>("ApiNotFound")({ error: ErrorBody }, { httpApiStatus: 404 }) {}
export class ApiConflict extends Schema.Error<ApiConflict>("ApiConflict")({ error: ErrorBody }, { httpApiStatus: 409 }) {}
export class ApiPayloadTooLarge extends Schema.Error<ApiPayloadTooLarge>("ApiPayloadTooLarge")({ error: ErrorBody }, { httpApiStatus: 413 }) {}
export class ApiUnavailable extends Schema.Error<ApiUnavailable>("ApiUnavailable")({ error: ErrorBody }, { httpApiStatus: 503 }) {}

/** Builds the wire error for a status from a code, message and optional details. */
export const apiError = {
  badRequest: (message: string, details?: Record<string, unknown>) => new ApiBadRequest({ error: { code: "bad_request", message, details } }),
  unauthorized: (message: string) => new ApiUnauthorized({ error: { code: "unauthorized", message } }),
  forbidden: (message: string, details?: Record<string, unknown>) => new ApiForbidden({ error: { code: "forbidden", message, details } }),
  notFound: (message: string) => new ApiNotFound({ error: { code: "not_found", message } }),
  conflict: (message: string, details?: Record<string, unknown>) => new ApiConflict({ error: { code: "conflict", message, details } }),
  payloadTooLarge: (message: string, details?: Record<string, unknown>) =>
    new ApiPayloadTooLarge({ error: { code: "payload_too_large", message, details } }),
  unavailable: (message: string) => new ApiUnavailable({ error: { code: "unavailable", message } })
}

// ---------------------------------------------------------------------------------------------------------------
// Authorization: who may call a route is declared next to it, as a `RequiredScopes` annotation.

/** The authenticated caller, provided by `Authentication` to every protected handler. */
export class CurrentPrincipal extends Context.Service<CurrentPrincipal, Principal>()("cowork/Api/CurrentPrincipal") {}

/** Any one of these scopes grants access. Unannotated protected routes require `admin` (fail closed). */
export const RequiredScopes = Context.Reference<ReadonlyArray<TokenScope>>("cowork/Api/RequiredScopes", {
  defaultValue: () => ["admin"]
})

/** The scopes a route needs: the endpoint's annotation, else its group's, else the fail-closed default. */
export const requiredScopes = (
  groupAnnotations: Context.Context<never>,
  endpointAnnotations: Context.Context<never>
): ReadonlyArray<TokenScope> =>
  Context.getOrUndefined(endpointAnnotations, RequiredScopes)
    ?? Context.getOrUndefined(groupAnnotations, RequiredScopes)
    ?? RequiredScopes.defaultValue()

export class Authentication extends HttpApiMiddleware.Service<Authentication, {
  provides: CurrentPrincipal
}>()("cowork/Api/Authentication", {
  security: { bearer: HttpApiSecurity.bearer },
  error: [ApiUnauthorized, ApiForbidden]
}) {}

// ---------------------------------------------------------------------------------------------------------------
// Health (no auth)

export const Liveness = Schema.Struct({ ok: Schema.Literal(true), role: Schema.String, profileName: Schema.String })

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

export class HealthApi extends HttpApiGroup.make("health", { topLevel: true })
  .add(
    HttpApiEndpoint.get("healthz", "/healthz", { success: Liveness }),
    HttpApiEndpoint.get("livez", "/livez", { success: Liveness }),
    HttpApiEndpoint.get("readyz", "/readyz", { success: Readiness, error: NotReady })
  )
  .annotateMerge(OpenApi.annotations({ title: "Health", description: "Liveness and readiness probes (no auth)" }))
{}

// ---------------------------------------------------------------------------------------------------------------
// Sessions (bearer token with scope `web` or `admin`)

const hasNoNul = Schema.makeFilter<string>((s) => !s.includes("\u0000") || "must not contain NUL characters")

export const CreateSessionBody = Schema.Struct({
  title: Schema.optional(Schema.String.check(Schema.isMaxLength(MAX_TITLE_LENGTH), hasNoNul)),
  profileName: Schema.optional(
    Schema.String.check(Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/))
  ),
  projectSource: Schema.optional(Schema.Unknown)
})

/** `text` has no schema maximum: an over-long prompt is a 413 (see `MAX_PROMPT_LENGTH`), not a 400. */
export const PromptBody = Schema.Struct({
  text: Schema.String.check(Schema.isMinLength(1), hasNoNul),
  idempotencyKey: Schema.optional(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(MAX_IDEMPOTENCY_KEY_LENGTH), hasNoNul))
})

export const SessionEnvelope = Schema.Struct({ session: Session })

export const SessionPage = Schema.Struct({
  sessions: Schema.Array(Session),
  nextCursor: Schema.NullOr(Schema.String),
  totalEstimate: Schema.Number
})

export const CommandAccepted = Schema.Struct({ commandId: Schema.String })

export const MAX_PAGE_SIZE = 100
export const DEFAULT_PAGE_SIZE = 50

export const ListSessionsQuery = {
  limit: Schema.optional(Schema.FiniteFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: MAX_PAGE_SIZE }))),
  cursor: Schema.optional(Schema.String.check(Schema.isMaxLength(400))),
  status: Schema.optional(SessionStatus),
  profileName: Schema.optional(Schema.String.check(Schema.isMaxLength(64))),
  q: Schema.optional(Schema.String.check(Schema.isMaxLength(200), hasNoNul))
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
export const SessionChangedEvent = Schema.Struct({ sessionId: Schema.String, lastSequence: Schema.Number })

const sessionId = { id: Schema.String.check(Schema.isMaxLength(100)) }

export class SessionsApi extends HttpApiGroup.make("sessions")
  .add(
    HttpApiEndpoint.post("create", "/api/sessions", {
      payload: CreateSessionBody,
      success: SessionEnvelope.pipe(HttpApiSchema.status(201)),
      error: ApiBadRequest
    }),
    HttpApiEndpoint.get("list", "/api/sessions", {
      query: ListSessionsQuery,
      success: SessionPage,
      error: ApiBadRequest
    }),
    HttpApiEndpoint.get("get", "/api/sessions/:id", {
      params: sessionId,
      success: SessionEnvelope,
      error: ApiNotFound
    }),
    HttpApiEndpoint.get("view", "/api/sessions/:id/view", {
      params: sessionId,
      success: SessionView,
      error: ApiNotFound
    }),
    HttpApiEndpoint.post("prompt", "/api/sessions/:id/prompt", {
      params: sessionId,
      payload: PromptBody,
      success: CommandAccepted.pipe(HttpApiSchema.status(202)),
      error: [ApiBadRequest, ApiNotFound, ApiConflict, ApiPayloadTooLarge]
    }),
    HttpApiEndpoint.post("abort", "/api/sessions/:id/abort", {
      params: sessionId,
      success: CommandAccepted.pipe(HttpApiSchema.status(202)),
      error: ApiNotFound
    }),
    HttpApiEndpoint.get("events", "/api/sessions/:id/events", {
      params: sessionId,
      query: { after: Schema.optional(Schema.String) },
      success: HttpApiSchema.StreamSse({ data: SessionEvent }),
      error: [ApiBadRequest, ApiNotFound, ApiConflict, ApiUnavailable]
    }).annotate(OpenApi.Description, "SSE: `id: <sequence>`, `event: <type>`, `data: <SessionEvent>`; resume with `?after=N` (wins) or `Last-Event-ID`; a pruned cursor gets `event: snapshot.required`, a cursor ahead of the log 409."),
    HttpApiEndpoint.get("workspaceEvents", "/api/events", {
      success: HttpApiSchema.StreamSse({ data: SessionChangedEvent }),
      error: ApiUnavailable
    }).annotate(OpenApi.Description, "SSE of the caller's org: `event: session.changed` whenever one of its sessions' logs grows.")
  )
  .middleware(Authentication)
  .annotate(RequiredScopes, ["web", "admin"])
  .annotateMerge(OpenApi.annotations({ title: "Sessions", description: "Create, list, prompt, abort and stream sessions" }))
{}

export class Api extends HttpApi.make("cowork-cloud")
  .add(HealthApi)
  .add(SessionsApi)
  .annotateMerge(OpenApi.annotations({ title: "Cowork Cloud API" }))
{}

/** The authorization table derived from the API definition: `METHOD path → scopes` (`[]` = no auth). */
export const authorizationTable = (): ReadonlyArray<{ readonly method: string; readonly path: string; readonly scopes: ReadonlyArray<TokenScope> }> => {
  const rows: Array<{ method: string; path: string; scopes: ReadonlyArray<TokenScope> }> = []
  for (const group of Object.values(Api.groups)) {
    for (const endpoint of Object.values(group.endpoints)) {
      const authenticated = endpoint.middlewares.has(Authentication)
      const scopes = requiredScopes(group.annotations, endpoint.annotations)
      rows.push({ method: endpoint.method, path: endpoint.path, scopes: authenticated ? scopes : [] })
    }
  }
  return rows
}
