import { CurrentPrincipal, RateLimited, type SnapshotRequired } from "@cowork/domain"
import { Metrics } from "@cowork/observability"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { Context, Deferred, Effect, Exit, Option, Scope, Stream } from "effect"
import { Cookies, HttpEffect, type HttpServerRequest, HttpServerResponse } from "effect/http"
import { ServerResponse } from "node:http"
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
 * A body written by plain calls into the response's `SseSink` (the session hub) until the stream's scope closes.
 */
export type SinkBody = (sink: SseSink) => Effect.Effect<void, never, Scope.Scope>

/** The platform's request, whose `upgradeState.response` tells its server the connection was taken over. */
type TakeOver = { upgradeState?: { readonly response: HttpServerResponse.HttpServerResponse } | undefined }

/**
 * A session or workspace stream's own scope: closed once, when its response closes or, when the response was never
 * handed over, with the request. A class, so an open stream keeps no closure (and no context of the code that opened
 * it) for it.
 */
class StreamScope {
  readonly scope = Scope.makeUnsafe()
  #closed = false
  #handedOver = false

  close() {
    if (this.#closed) return
    this.#closed = true
    Effect.runFork(Scope.close(this.scope, Exit.void))
  }

  handOver() {
    this.#handedOver = true
  }

  /** The request ended: closes the stream unless its response was handed over (its close closes it then). */
  requestEnded() {
    if (!this.#handedOver) this.close()
  }
}

/**
 * The pre-response handler that hands `response` (the final one, every middleware's headers on it) to its connection:
 * writes its head on the Node response, attaches the sink, and tells the platform the connection was taken over (its
 * `upgradeState`, as for an upgrade), so it neither writes the response nor waits for the body. Anything else (an
 * error response instead, a client already gone) is left to the platform; the request's end then closes the stream.
 */
const handOver = (response: HttpServerResponse.HttpServerResponse, sink: SseSink, stream: StreamScope) =>
(request: HttpServerRequest.HttpServerRequest, sent: HttpServerResponse.HttpServerResponse) =>
  Effect.sync(() => {
    const platform = request as unknown as TakeOver
    if (sent.body !== response.body || !("upgradeState" in platform)) return sent
    const node = NodeHttpServerRequest.toServerResponse(request)
    if (!(node instanceof ServerResponse) || node.destroyed || node.headersSent || node.writableEnded) return sent
    const cookies = Cookies.isEmpty(sent.cookies) ? [] : Cookies.toSetCookieHeaders(sent.cookies)
    node.writeHead(sent.status, cookies.length === 0 ? sent.headers : { ...sent.headers, "set-cookie": cookies })
    stream.handOver()
    platform.upgradeState = { response: sent }
    sink.attach(node, stream.close.bind(stream))
    return sent
  })

/**
 * Takes the org's slot, the gauge, the drain and revocation callbacks and the body's subscription in `scope`; false
 * when the org is at its cap. Module-level, so the closures it leaves in the scope hold only its own arguments.
 */
const openSinkStream = (
  scope: Scope.Scope,
  reserve: Effect.Effect<Effect.Effect<void> | undefined>,
  gauge: Effect.Effect<void, never, Scope.Scope>,
  sink: SseSink,
  endOn: (stop: () => void) => Effect.Effect<void, never, Scope.Scope>,
  body: SinkBody
) =>
  Effect.gen(function*() {
    const release = yield* reserve
    if (release === undefined) return false
    yield* Scope.addFinalizer(scope, release)
    yield* gauge
    sink.send(RETRY_CHUNK)
    yield* endOn(sink.finish.bind(sink))
    yield* body(sink)
    return true
  })

/**
 * Held open for as long as the response streams, counted in `open_cowork_cloud_sse_connections` and against the
 * org's stream cap (429 when the org is at it; a refused stream is never counted). The stream ends when the process
 * drains, or when the token it was opened with (API token or browser session) is revoked or expires, on whichever
 * process it was revoked (`TokenRevocations`): both are callbacks, not a watcher per stream.
 *
 * `body` is either an Effect stream (delivery streams, one per gateway process, and the one-frame `snapshot.required`
 * streams: one fiber runs it, with its own keep-alive timer; its slot and gauge belong to the request's scope, which
 * closes however the request ends), or a `SinkBody` (session and workspace streams, the ones that come by the
 * thousand — a browser tab holds one of each): nothing runs per stream between frames (the hub's process-wide timer
 * sends their keep-alives), and the request ends once the response is handed over. Its slot, gauge, drain and
 * revocation callbacks and hub subscription belong to a scope of the stream's own, in the process's context (not a
 * copy of the request's), closed once when the response closes, however it does (the client leaves, the stream is
 * finished by drain, revocation or the hub and flushed, or aborted), or with the request when the response is
 * never handed over (an error after this, a client gone before its head).
 *
 * The hand-over is the response's last step (a pre-response handler, after every middleware set its headers): the
 * head is written on the Node response, the sink attached to it (`SseSink.attach`), and the platform told the
 * connection was taken over (as for an upgrade) so it neither writes the response nor waits for its body.
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
    const principal = yield* Effect.serviceOption(CurrentPrincipal)
    /** Registers `stop` for both reasons to end the stream (run at once if one already holds). */
    const endOn = (stop: () => void) =>
      Effect.andThen(
        lifecycle.onDrain(stop),
        Option.isSome(principal) ? revocations.onEnd(principal.value, stop) : Effect.void
      )
    if (typeof body === "function") {
      const stream = new StreamScope()
      yield* Effect.addFinalizer(() => Effect.sync(() => stream.requestEnded()))
      const sink = new SseSink()
      const opened = yield* openSinkStream(stream.scope, caps.reserve(orgId), metrics.hold("open_cowork_cloud_sse_connections", { stream: kind }), sink, endOn, body).pipe(
        // The process's context, not the request's: what the stream's scope keeps (its finalizers, a replay fiber).
        Effect.updateContext((_: Context.Context<never>) => Context.add(caps.context, Scope.Scope, stream.scope))
      )
      if (!opened) return yield* capReached(caps.maxPerOrg)
      const response = HttpServerResponse.raw(sink, { contentType: "text/event-stream", headers: SSE_HEADERS })
      yield* HttpEffect.appendPreResponseHandler(handOver(response, sink, stream))
      return response
    }
    const release = yield* caps.reserve(orgId)
    if (release === undefined) return yield* capReached(caps.maxPerOrg)
    yield* Effect.addFinalizer(() => release)
    yield* metrics.hold("open_cowork_cloud_sse_connections", { stream: kind })
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
