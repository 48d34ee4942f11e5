import { CurrentPrincipal, RateLimited, type SnapshotRequired } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import { Deferred, Effect, Option, type Scope, Stream } from "effect"
import { HttpServerResponse } from "effect/http"
import { KEEP_ALIVE_INTERVAL, SessionEventHub } from "./SessionEventHub.ts"
import { SseChunk } from "./SseChunk.ts"
import { frame } from "./SseFrames.ts"
import { SseSink } from "./SseSink.ts"
import { CAP_RETRY_AFTER_SECONDS, SseStreamCaps } from "./SseStreamCaps.ts"
import { TokenRevocations } from "./TokenRevocations.ts"
import { WebLifecycle } from "./WebLifecycle.ts"

const encoder = new TextEncoder()
export const encoded = (body: Stream.Stream<string>) => Stream.map(body, (text) => encoder.encode(text))
/** Reconnect delay suggested to clients (`retry:`). */
export const RETRY_HINT_MS = 2_000
/** Seconds a client should wait before reconnecting to a draining process (`Retry-After`). */
export const DRAIN_RETRY_AFTER_SECONDS = 2
/** 429 for an org at its stream cap (`Retry-After` and `retryAfterMs` come with the error's wire form). */
const capReached = (maxPerOrg: number) =>
  new RateLimited({
    message: `this org already holds ${maxPerOrg} event streams on this server; close one or retry later`,
    retryAfterMs: CAP_RETRY_AFTER_SECONDS * 1_000,
    details: { limit: maxPerOrg }
  })

const RETRY_FRAME = encoder.encode(`retry: ${RETRY_HINT_MS}\n\n`)
const RETRY_CHUNK = new SseChunk(Buffer.from(RETRY_FRAME))
const KEEP_ALIVE_FRAME = encoder.encode(": keep-alive\n\n")

const SSE_HEADERS = { "cache-control": "no-cache", "x-accel-buffering": "no" }

/** HEAD on an SSE route: the stream's headers, no stream opened and no slot taken. */
export const sseHeadResponse = () =>
  HttpServerResponse.empty({ status: 200, headers: { ...SSE_HEADERS, "content-type": "text/event-stream" } })

/**
 * A body written by plain calls into the response's `SseSink` (the session hub) until the request's scope closes.
 */
export type SinkBody = (sink: SseSink) => Effect.Effect<void, never, Scope.Scope>

/**
 * Held open for as long as the response streams, counted in `open_cowork_cloud_sse_connections` and against the
 * org's stream cap (429 when the org is at it; a refused stream is never counted). The slot belongs to the request's
 * scope, which closes however the request ends (streamed to the end, aborted by the client, failed, or a response
 * whose body the server never runs), so no exit path keeps it. The stream ends when the process drains, or when the
 * token it was opened with (API token or browser session) is revoked or expires, on whichever process it was revoked
 * (`TokenRevocations`): both are callbacks, not a watcher per stream.
 *
 * `body` is either an Effect stream (delivery streams, one per gateway process, and the one-frame `snapshot.required`
 * streams: one fiber runs it, with its own keep-alive timer), or a `SinkBody` (session and workspace streams, the ones
 * that come by the thousand — a browser tab holds one of each): the server pipes the sink to the socket and nothing
 * runs per stream between frames; the hub's process-wide timer sends their keep-alives.
 */
export const sseResponse = (
  orgId: string,
  kind: "session" | "workspace" | "delivery",
  body: Stream.Stream<Uint8Array> | SinkBody
) =>
  Effect.gen(function*() {
    const lifecycle = yield* WebLifecycle
    const metrics = yield* Metrics
    const caps = yield* SseStreamCaps
    const revocations = yield* TokenRevocations
    const release = yield* caps.reserve(orgId)
    if (release === undefined) return yield* capReached(caps.maxPerOrg)
    yield* Effect.addFinalizer(() => release)
    yield* metrics.hold("open_cowork_cloud_sse_connections", { stream: kind })
    const principal = yield* Effect.serviceOption(CurrentPrincipal)
    /** Registers `stop` for both reasons to end the stream (run at once if one already holds). */
    const endOn = (stop: () => void) =>
      Effect.andThen(
        lifecycle.onDrain(stop),
        Option.isSome(principal) ? revocations.onEnd(principal.value, stop) : Effect.void
      )
    if (typeof body === "function") {
      const sink = new SseSink()
      sink.send(RETRY_CHUNK)
      yield* endOn(() => sink.finish())
      yield* body(sink)
      return HttpServerResponse.raw(sink, { contentType: "text/event-stream", headers: SSE_HEADERS })
    }
    const ended = Deferred.makeUnsafe<void>()
    yield* endOn(() => Deferred.doneUnsafe(ended, Effect.void))
    const keepAlive = Stream.tick(KEEP_ALIVE_INTERVAL).pipe(Stream.drop(1), Stream.map(() => KEEP_ALIVE_FRAME))
    const stream = Stream.make(RETRY_FRAME).pipe(
      Stream.concat(Stream.merge(body, keepAlive, { haltStrategy: "left" })),
      Stream.interruptWhen(Deferred.await(ended)),
      Stream.ensuring(release)
    )
    return HttpServerResponse.stream(stream, {
      contentType: "text/event-stream",
      headers: SSE_HEADERS
    })
  })

/**
 * The session's events after `cursor`: its backlog, then live, through the process's per-session fan-out (one read
 * per session per notification, however many streams watch it); no gap and no duplicate.
 */
export const sessionEventsResponse = (orgId: string, sessionId: string, cursor: number) =>
  Effect.gen(function*() {
    const hub = yield* SessionEventHub
    return yield* sseResponse(orgId, "session", (sink) => hub.subscribeSession(sessionId, cursor, sink))
  })

/** A cursor older than retention: one `snapshot.required` frame, then the stream ends (reload the view, resume after it). */
export const snapshotRequiredResponse = (orgId: string, snapshot: SnapshotRequired) =>
  sseResponse(orgId, "session", encoded(Stream.make(frame({ event: "snapshot.required", data: snapshot }))))

/** The org's session-list changes, live. */
export const workspaceEventsResponse = (orgId: string) =>
  Effect.gen(function*() {
    const hub = yield* SessionEventHub
    return yield* sseResponse(orgId, "workspace", (sink) => hub.subscribeOrg(orgId, sink))
  })
