import { SessionEvent, SnapshotRequired } from "@cowork/domain"
import { Data, Effect, Redacted, Schema, Stream } from "effect"
import * as Sse from "effect/encoding/Sse"
import { HttpClient, HttpClientRequest } from "effect/http"
import type { Options } from "./CoworkClient.ts"

/**
 * `GET /api/sessions/:id/events` as a typed stream. The client derived from the API definition cannot read our
 * streams: Effect's SSE decoder treats a `retry:` directive as "reconnect now" and fails, and every stream of ours
 * opens with the reconnect hint. This reader keeps the hint as data and decodes each frame with the domain schema.
 */

type SessionStreamItem =
  | { readonly _tag: "Event"; readonly event: SessionEvent }
  /** The cursor is older than the retained log: reload the view, then resume after `latestSequence`. */
  | { readonly _tag: "SnapshotRequired"; readonly snapshot: SnapshotRequired }

/** A frame that is not JSON or not the shape its `event:` name promises. */
class SessionStreamDecodeError extends Data.TaggedError("SessionStreamDecodeError")<{
  readonly event: string
  readonly message: string
}> {}

const decodeEvent = Schema.decodeUnknownEffect(SessionEvent)
const decodeSnapshot = Schema.decodeUnknownEffect(SnapshotRequired)

const toItem = (frame: Sse.Event): Effect.Effect<SessionStreamItem, SessionStreamDecodeError> =>
  Effect.try({
    try: () => JSON.parse(frame.data) as unknown,
    catch: () => new SessionStreamDecodeError({ event: frame.event, message: "data is not JSON" })
  }).pipe(
    Effect.flatMap((data) =>
      frame.event === "snapshot.required"
        ? Effect.map(decodeSnapshot(data), (snapshot): SessionStreamItem => ({ _tag: "SnapshotRequired", snapshot }))
        : Effect.map(decodeEvent(data), (event): SessionStreamItem => ({ _tag: "Event", event }))
    ),
    Effect.mapError((error) =>
      error instanceof SessionStreamDecodeError ? error : new SessionStreamDecodeError({ event: frame.event, message: error.message })
    )
  )

/**
 * The session's events after `after` (default: from the start), replayed and then live, until the server ends the
 * stream or the consumer stops. A non-2xx answer fails the stream with the `HttpClientError`.
 */
export const sessionEvents = (options: Options, sessionId: string, after?: number) =>
  Stream.unwrap(Effect.gen(function*() {
    const http = HttpClient.filterStatusOk(yield* HttpClient.HttpClient)
    const token = options.token === undefined ? undefined : Redacted.isRedacted(options.token) ? Redacted.value(options.token) : options.token
    const request = HttpClientRequest.get(`${options.baseUrl}/api/sessions/${encodeURIComponent(sessionId)}/events`).pipe(
      HttpClientRequest.setUrlParams(after === undefined ? {} : { after: String(after) }),
      HttpClientRequest.setHeader("accept", "text/event-stream"),
      token === undefined ? (r) => r : HttpClientRequest.bearerToken(token)
    )
    const response = yield* http.execute(request)
    let frames: Array<Sse.Event> = []
    const parser = Sse.makeParser((frame) => {
      if (frame._tag === "Event") frames.push(frame)
    })
    return response.stream.pipe(
      Stream.decodeText,
      Stream.mapEffect((text) => {
        const error = parser.feed(text)
        if (error !== undefined) return Effect.fail(new SessionStreamDecodeError({ event: "", message: String(error) }))
        const ready = frames
        frames = []
        return Effect.forEach(ready, toItem)
      }),
      Stream.flattenIterable
    )
  }))
