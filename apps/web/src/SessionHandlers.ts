import { Api, BadRequest, Conflict, CurrentPrincipal, DEFAULT_PAGE_SIZE, DEFAULT_VIEW_MESSAGES, MAX_PROMPT_LENGTH, PayloadTooLarge, Unavailable } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { EventLog, SessionStore } from "@cowork/services"
import { Effect, Option, type Tracer } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { HttpTraceContext } from "effect/http"
import {
  DRAIN_RETRY_AFTER_SECONDS,
  sessionEventsResponse,
  snapshotRequiredResponse,
  sseHeadResponse,
  workspaceEventsResponse
} from "./SseStreams.ts"
import { QuotaPolicy } from "./QuotaPolicy.ts"
import { viewerOf } from "./ThreadHandlers.ts"
import { WebLifecycle } from "./WebLifecycle.ts"

const SEQUENCE_PATTERN = /^(0|[1-9][0-9]{0,15})$/

const draining = new Unavailable({ message: "this process is shutting down; reconnect", retryAfterSeconds: DRAIN_RETRY_AFTER_SECONDS })

/** Parses the resume cursor: `?after=N` wins over `Last-Event-ID`; neither means from the beginning. */
const resumeCursor = (after: string | undefined, lastEventId: string | undefined) => {
  if (after !== undefined) {
    return SEQUENCE_PATTERN.test(after)
      ? Effect.succeed(Number(after))
      : Effect.fail(new BadRequest({ message: "invalid query field `after`: expected a non-negative integer", field: "after" }))
  }
  if (lastEventId !== undefined && lastEventId !== "") {
    return SEQUENCE_PATTERN.test(lastEventId)
      ? Effect.succeed(Number(lastEventId))
      : Effect.fail(new BadRequest({ message: "invalid header `Last-Event-ID`: expected a non-negative integer", field: "Last-Event-ID" }))
  }
  return Effect.succeed(0)
}

export const layer = HttpApiBuilder.group(Api, "sessions", Effect.fn(function*(handlers) {
  const store = yield* SessionStore
  const quotaPolicy = yield* QuotaPolicy
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
          session: yield* store.create(principal.orgId, { ...payload, createdBy: viewerOf(principal) }).pipe(
            metrics.time("open_cowork_cloud_session_create_duration_ms")
          )
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
      }),
    view: ({ params, query }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        return yield* store.view(principal.orgId, params.id, { limit: query.limit ?? DEFAULT_VIEW_MESSAGES, cursor: query.cursor })
      }),
    prompt: ({ params, payload }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        if (payload.text.length > MAX_PROMPT_LENGTH) {
          return yield* new PayloadTooLarge({
            message: `prompt text exceeds ${MAX_PROMPT_LENGTH} characters`,
            details: { field: "text", maxLength: MAX_PROMPT_LENGTH }
          })
        }
        const { commandId } = yield* store.prompt(principal.orgId, params.id, {
          ...payload,
          traceParent: yield* traceParent,
          quota: quotaPolicy.promptQuota
        }).pipe(
          metrics.time("open_cowork_cloud_prompt_enqueue_duration_ms"),
          quotaPolicy.counted
        )
        return { commandId }
      }),
    abort: ({ params }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        const { commandId } = yield* store.abort(principal.orgId, params.id)
        return { commandId }
      }),
    events: ({ params, query, request }) =>
      Effect.gen(function*() {
        if (yield* lifecycle.isDraining) return yield* draining
        const principal = yield* CurrentPrincipal
        yield* store.get(principal.orgId, params.id)
        if (request.method === "HEAD") return sseHeadResponse()
        const cursor = yield* resumeCursor(query.after, request.headers["last-event-id"])
        const bounds = yield* eventLog.bounds(params.id)
        if (cursor > bounds.latestSequence) {
          return yield* new Conflict({
            message: "the cursor is ahead of the session's log",
            details: { afterSequence: cursor, latestSequence: bounds.latestSequence }
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
      }),
    workspaceEvents: ({ request }) =>
      Effect.gen(function*() {
        if (yield* lifecycle.isDraining) return yield* draining
        if (request.method === "HEAD") return sseHeadResponse()
        const principal = yield* CurrentPrincipal
        return yield* workspaceEventsResponse(principal.orgId)
      })
  })
}))
