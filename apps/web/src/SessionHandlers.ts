import { Api, apiError, CurrentPrincipal, DEFAULT_PAGE_SIZE, MAX_PROMPT_LENGTH, NotFound } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { EventLog, SessionStore } from "@cowork/services"
import { Effect, Option, type Tracer } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { HttpTraceContext } from "effect/http"
import { errorResponse } from "./ErrorResponse.ts"
import {
  DRAIN_RETRY_AFTER_SECONDS,
  sessionEventsResponse,
  snapshotRequiredResponse,
  sseHeadResponse,
  workspaceEventsResponse
} from "./SseStreams.ts"
import { WebLifecycle } from "./WebLifecycle.ts"

const SEQUENCE_PATTERN = /^(0|[1-9][0-9]{0,15})$/

const notFound = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.catchIf(
    effect,
    (e): e is Extract<E, NotFound> => e instanceof NotFound,
    (e) => Effect.fail(apiError.notFound(e.message))
  )

const drainingResponse = () =>
  errorResponse(503, "this process is shutting down; reconnect", {
    headers: { "retry-after": String(DRAIN_RETRY_AFTER_SECONDS) }
  })

/** Parses the resume cursor: `?after=N` wins over `Last-Event-ID`; neither means from the beginning. */
const resumeCursor = (after: string | undefined, lastEventId: string | undefined) => {
  if (after !== undefined) {
    return SEQUENCE_PATTERN.test(after)
      ? Effect.succeed(Number(after))
      : Effect.fail(apiError.badRequest("invalid query field `after`: expected a non-negative integer", { field: "after" }))
  }
  if (lastEventId !== undefined && lastEventId !== "") {
    return SEQUENCE_PATTERN.test(lastEventId)
      ? Effect.succeed(Number(lastEventId))
      : Effect.fail(apiError.badRequest("invalid header `Last-Event-ID`: expected a non-negative integer", { field: "Last-Event-ID" }))
  }
  return Effect.succeed(0)
}

export const layer = HttpApiBuilder.group(Api, "sessions", Effect.fn(function*(handlers) {
  const store = yield* SessionStore
  const eventLog = yield* EventLog
  const lifecycle = yield* WebLifecycle
  const metrics = yield* Metrics
  /** The HTTP request's server span as a W3C `traceparent`, stored with the command so the worker's run links to it. */
  const traceParent = Effect.map(Effect.option(Effect.currentSpan), (current) => {
    if (Option.isNone(current)) return undefined
    let span: Tracer.Span = current.value
    while (span.kind !== "server" && Option.isSome(span.parent) && span.parent.value._tag === "Span") span = span.parent.value
    return span.sampled ? HttpTraceContext.toHeaders(span).traceparent : undefined
  })

  return handlers.handleAll({
    create: ({ payload }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return {
          session: yield* store.create(principal.orgId, payload).pipe(metrics.time("open_cowork_cloud_session_create_duration_ms"))
        }
      }),
    list: ({ query }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return yield* store.list(principal.orgId, { ...query, limit: query.limit ?? DEFAULT_PAGE_SIZE })
      }),
    get: ({ params }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return { session: yield* store.get(principal.orgId, params.id) }
      }).pipe(notFound),
    view: ({ params }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return yield* store.view(principal.orgId, params.id)
      }).pipe(notFound),
    prompt: ({ params, payload }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        if (payload.text.length > MAX_PROMPT_LENGTH) {
          return yield* apiError.payloadTooLarge(`prompt text exceeds ${MAX_PROMPT_LENGTH} characters`, {
            field: "text",
            maxLength: MAX_PROMPT_LENGTH
          })
        }
        const { commandId } = yield* store.prompt(principal.orgId, params.id, { ...payload, traceParent: yield* traceParent }).pipe(
          metrics.time("open_cowork_cloud_prompt_enqueue_duration_ms"),
          Effect.catchTag("Conflict", (e) => Effect.fail(apiError.conflict(e.message)))
        )
        return { commandId }
      }).pipe(notFound),
    abort: ({ params }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        const { commandId } = yield* store.abort(principal.orgId, params.id)
        return { commandId }
      }).pipe(notFound),
    events: ({ params, query, request }) =>
      Effect.gen(function*() {
        if (yield* lifecycle.isDraining) return drainingResponse()
        const principal = yield* CurrentPrincipal
        yield* store.get(principal.orgId, params.id)
        if (request.method === "HEAD") return sseHeadResponse()
        const cursor = yield* resumeCursor(query.after, request.headers["last-event-id"])
        const bounds = yield* eventLog.bounds(params.id)
        if (cursor > bounds.latestSequence) {
          return yield* apiError.conflict("the cursor is ahead of the session's log", {
            afterSequence: cursor,
            latestSequence: bounds.latestSequence
          })
        }
        if (cursor < bounds.earliestSequence - 1) {
          return yield* snapshotRequiredResponse(principal.orgId, {
            reason: "cursor_pruned",
            afterSequence: cursor,
            earliestSequence: bounds.earliestSequence,
            latestSequence: bounds.latestSequence
          })
        }
        return yield* sessionEventsResponse(principal.orgId, params.id, cursor)
      }).pipe(notFound),
    workspaceEvents: ({ request }) =>
      Effect.gen(function*() {
        if (yield* lifecycle.isDraining) return drainingResponse()
        if (request.method === "HEAD") return sseHeadResponse()
        const principal = yield* CurrentPrincipal
        return yield* workspaceEventsResponse(principal.orgId)
      })
  })
}))
