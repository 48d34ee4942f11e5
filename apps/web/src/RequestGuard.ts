import { authorizationTable } from "@cowork/domain"
import { methodLabel, Metrics, redactDeep, routeLabel, statusLabel } from "@cowork/observability"
import { HttpApiError } from "effect/http-api"
import { ByteSize, Cause, Clock, Config, Context, Effect, Layer, LogLevel, SchemaIssue, type Types } from "effect"
import { HttpIncomingMessage, HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { artifactSettings } from "./ArtifactHandlers.ts"
import { errorResponse } from "./ErrorResponse.ts"

/** The request's id (echoed in `X-Request-Id`), for handlers that record it (audit rows). */
export const CurrentRequestId = Context.Reference<string | undefined>("cowork/web/CurrentRequestId", { defaultValue: () => undefined })

/** A request that took at least this long is logged at info even when it succeeded (OPEN_COWORK_CLOUD_SLOW_REQUEST_MS). */
const DEFAULT_SLOW_REQUEST_MS = 1_000

/** Largest request body any route accepts. */
const MAX_BODY_BYTES = 1024 * 1024

/** Artifact uploads stream to the object store under their own, larger limit (OPEN_COWORK_CLOUD_ARTIFACT_MAX_BYTES). */
const ARTIFACT_UPLOAD = /^\/api\/sessions\/[^/?]+\/artifacts\/?(\?|$)/

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

const isBodyTooLarge = (u: unknown): boolean => {
  if (typeof u !== "object" || u === null) return false
  const reason = (u as { reason?: unknown }).reason
  if (reason === "BodyTooLarge") return true
  if (typeof reason === "object" && reason !== null) return isBodyTooLarge(reason)
  const cause = (u as { cause?: unknown }).cause
  return typeof cause === "object" && cause !== null && cause !== u && isBodyTooLarge(cause)
}

const isRouteNotFound = (u: unknown): boolean =>
  typeof u === "object" && u !== null && (u as { reason?: { _tag?: unknown } }).reason?._tag === "RouteNotFound"

const schemaErrorResponse = (error: HttpApiError.HttpApiSchemaError) => {
  const issues = formatIssues(error.cause.issue).issues.map((issue) => ({
    path: (issue.path ?? []).map((segment) => String(typeof segment === "object" ? segment.key : segment)).join("."),
    message: issue.message
  }))
  const first = issues[0]
  const field = first !== undefined && first.path !== "" ? first.path : undefined
  const location = error.kind.toLowerCase()
  const message = first === undefined
    ? `invalid ${location}`
    : field === undefined
    ? `invalid ${location}: ${first.message}`
    : `invalid ${location} field \`${field}\`: ${first.message}`
  return errorResponse(400, message, { details: { location, ...(field === undefined ? {} : { field }), issues } })
}

/** Each route template of the API as a matcher, with the methods it takes. */
const routeMethods: ReadonlyArray<{ readonly pattern: RegExp; readonly methods: ReadonlyArray<string> }> = (() => {
  const byPath = new Map<string, Set<string>>()
  for (const row of authorizationTable()) {
    const methods = byPath.get(row.path) ?? new Set<string>()
    methods.add(row.method)
    byPath.set(row.path, methods)
  }
  return [...byPath].map(([path, methods]) => ({
    pattern: new RegExp(`^${path.split("/").map((part) => part.startsWith(":") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("/")}/?$`),
    methods: [...methods].sort()
  }))
})()

/** The methods the route at this URL takes, when some route matches its path. */
const allowedMethods = (url: string): ReadonlyArray<string> => {
  const path = url.split("?")[0] ?? url
  return routeMethods.filter((route) => route.pattern.test(path)).flatMap((route) => route.methods)
}

/** Seconds a client should wait before retrying while the database is unreachable (`Retry-After`). */
const DATABASE_RETRY_AFTER_SECONDS = 2

/** Postgres SQLSTATEs of a server that is shutting down, starting up, or out of connections. */
const UNAVAILABLE_SQLSTATES = new Set(["57P01", "57P02", "57P03", "53300"])
/** Socket failures of a connection the server dropped or never accepted. */
const UNAVAILABLE_SOCKET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENOTFOUND"])

/**
 * A SQL failure that says the database cannot be reached right now (a 503 for the caller, not a 500): a connection
 * error, or a server that is shutting down, starting up or out of connections.
 */
const isDatabaseUnavailable = (u: unknown): boolean => {
  if (typeof u !== "object" || u === null || (u as { _tag?: unknown })._tag !== "SqlError") return false
  const reason = (u as { reason?: { _tag?: unknown; cause?: unknown } }).reason
  const tag = String(reason?._tag ?? "")
  if (tag.endsWith("ConnectionError")) return true
  let cause: unknown = reason?.cause
  for (let depth = 0; depth < 4 && typeof cause === "object" && cause !== null; depth++) {
    const code = (cause as { code?: unknown }).code
    if (typeof code === "string" && (UNAVAILABLE_SQLSTATES.has(code) || UNAVAILABLE_SOCKET_CODES.has(code))) return true
    cause = (cause as { cause?: unknown }).cause
  }
  return false
}

/** Maps whatever escaped the routes (decode failures, unknown routes, oversized bodies, defects) to the error shape. */
const causeToResponse = (request: HttpServerRequest.HttpServerRequest) => (cause: Cause.Cause<unknown>) =>
  Effect.gen(function*() {
    if (Cause.hasInterruptsOnly(cause)) return HttpServerResponse.empty({ status: 499 })
    const values = cause.reasons.map((reason) =>
      Cause.isFailReason(reason) ? reason.error : Cause.isDieReason(reason) ? reason.defect : undefined
    )
    const schemaError = values.find(HttpApiError.HttpApiSchemaError.is)
    if (schemaError !== undefined && schemaError.kind !== "Body" && schemaError.kind !== "ResponseHeaders") {
      return schemaErrorResponse(schemaError)
    }
    if (values.some(isBodyTooLarge) || values.some(HttpApiError.HttpApiPayloadTooLarge.is)) {
      return errorResponse(413, `request body exceeds ${MAX_BODY_BYTES} bytes`, { details: { limitBytes: MAX_BODY_BYTES } })
    }
    if (values.some(isRouteNotFound)) {
      const allow = allowedMethods(request.url)
      return allow.length === 0
        ? errorResponse(404, "no such route")
        : errorResponse(405, `${request.method} is not allowed here; use ${allow.join(" or ")}`, {
          details: { allow },
          headers: { allow: allow.join(", ") }
        })
    }
    if (values.some(isDatabaseUnavailable)) {
      yield* Effect.logWarning("database unavailable", cause)
      return errorResponse(503, "the database is unavailable; retry shortly", {
        headers: { "retry-after": String(DATABASE_RETRY_AFTER_SECONDS) }
      })
    }
    yield* Effect.logError("unhandled error in request", cause)
    return errorResponse(500, "internal error")
  })

/** Gives error responses the routes produced without a JSON body (415, 405, empty 4xx) the error shape. */
const reshapeBareError = (response: HttpServerResponse.HttpServerResponse) => {
  if (response.status < 400 || response.body._tag === "Uint8Array" && response.body.contentType === "application/json") {
    return response
  }
  if (response.body._tag === "Stream") return response
  const text = response.body._tag === "Uint8Array" ? new TextDecoder().decode(response.body.body) : ""
  return errorResponse(response.status, text !== "" ? text : `request failed with status ${response.status}`, {
    headers: Object.fromEntries(Object.entries(response.headers).filter(([name]) => name !== "content-type" && name !== "content-length"))
  })
}

/** Error bodies echo what the caller sent (ids, field values); they leave only after the redaction pass. */
const redactErrorBody = (response: HttpServerResponse.HttpServerResponse) => {
  if (response.status < 400 || response.body._tag !== "Uint8Array") return response
  const text = new TextDecoder().decode(response.body.body)
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return response
  }
  const redacted = JSON.stringify(redactDeep(parsed))
  return redacted === text
    ? response
    : HttpServerResponse.setBody(response, HttpServerResponse.text(redacted, { contentType: response.body.contentType }).body)
}

/**
 * Global request guard: a request id on every response (echoed, or generated), a body size limit (checked against
 * `Content-Length` up front and enforced while reading), the `{"error": ...}` shape for every failure (redacted),
 * and the request's metrics and one JSON log line (`request_id`, `route` template, `status`, `duration_ms`): at info
 * for a failure (status >= 400) or a slow request (OPEN_COWORK_CLOUD_SLOW_REQUEST_MS, default 1 s), at debug otherwise.
 */
export const layer: Layer.Layer<never, never, HttpRouter.HttpRouter | Metrics> = HttpRouter.middleware(
  Effect.gen(function*() {
    const metrics = yield* Metrics
    const artifacts = yield* artifactSettings.pipe(Effect.orDie)
    const slowRequestMs = yield* Config.Int("OPEN_COWORK_CLOUD_SLOW_REQUEST_MS").pipe(
      Config.withDefault(DEFAULT_SLOW_REQUEST_MS),
      Effect.orDie
    )
    return (httpEffect) =>
      Effect.gen(function*() {
        const started = yield* Clock.currentTimeMillis
        const request = yield* HttpServerRequest.HttpServerRequest
        const incoming = request.headers["x-request-id"]
        const requestId = incoming !== undefined && REQUEST_ID_PATTERN.test(incoming) ? incoming : globalThis.crypto.randomUUID()
        const declaredLength = Number(request.headers["content-length"] ?? 0)
        const upload = request.method === "POST" && ARTIFACT_UPLOAD.test(request.url)
        const limitBytes = upload ? artifacts.maxRequestBytes : MAX_BODY_BYTES
        // The router puts the matched route in the fiber's context; read it before provideService restores that.
        let template: string | undefined
        const captureRoute = Effect.withFiber((fiber) => {
          template = Context.getOrUndefined(fiber.context, HttpRouter.RouteContext)?.route.path
          return Effect.void
        })
        const response = declaredLength > limitBytes
          ? errorResponse(413, `request body exceeds ${limitBytes} bytes`, {
            details: { limitBytes },
            headers: { connection: "close" }
          })
          : yield* httpEffect.pipe(
            Effect.ensuring(captureRoute),
            Effect.provideService(CurrentRequestId, requestId),
            // One byte of headroom on uploads so the artifact handler's own limit answers first, naming it.
            Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(upload ? limitBytes + 1 : limitBytes)),
            Effect.map(reshapeBareError),
            Effect.catchCause(causeToResponse(request)),
            Effect.map(redactErrorBody),
            Effect.annotateLogs({ request_id: requestId })
          )
        // A refused caller's unread body is not worth the connection: answer, then close it.
        const sentBody = declaredLength > 0 || request.headers["transfer-encoding"] !== undefined
        const closing = sentBody && (response.status === 401 || response.status === 403)
          ? HttpServerResponse.setHeader(response, "connection", "close")
          : response
        const durationMs = (yield* Clock.currentTimeMillis) - started
        const method = methodLabel(request.method)
        const route = routeLabel(template)
        yield* metrics.inc("open_cowork_cloud_http_requests_total", { method, status: statusLabel(response.status), route })
        yield* metrics.observe("open_cowork_cloud_http_request_duration_ms", { method, route }, durationMs)
        // The metrics above count every request; the log line is for what an operator looks into: a failure or a
        // slow request at info, a fast success at debug (at hundreds of prompts a second an info line per 202 is
        // most of the log volume and a few per cent of the web's CPU).
        if (response.status >= 400 || durationMs >= slowRequestMs) {
          yield* Effect.logInfo("http request").pipe(
            Effect.annotateLogs({ request_id: requestId, method, route, status: response.status, duration_ms: durationMs })
          )
        } else if (yield* LogLevel.isEnabled("Debug")) {
          yield* Effect.logDebug("http request").pipe(
            Effect.annotateLogs({ request_id: requestId, method, route, status: response.status, duration_ms: durationMs })
          )
        }
        return HttpServerResponse.setHeader(closing, "x-request-id", requestId)
      }) as Effect.Effect<HttpServerResponse.HttpServerResponse, Types.unhandled, HttpServerRequest.HttpServerRequest>
  }),
  { global: true }
)
