import { DeliveryAvailable } from "@cowork/domain"
import { Effect, Redacted, Schema, Stream } from "effect"
import * as Sse from "effect/encoding/Sse"
import { HttpClient, HttpClientRequest } from "effect/http"
import type { Options } from "./CoworkClient.ts"

type DeliveryWakeup =
  /** The stream is open (the server answered 200). */
  | { readonly _tag: "Open" }
  | { readonly _tag: "Available"; readonly available: DeliveryAvailable }

const decode = Schema.decodeUnknownOption(DeliveryAvailable)

/**
 * `GET /api/channels/deliveries/stream` (a gateway token): `Open` once connected, then one `Available` per
 * `delivery.available` frame, until the server ends the stream. Keep-alives and `retry:` hints are skipped (the
 * derived client cannot read our SSE streams; see SessionEvents.ts). A non-2xx answer fails with the HttpClientError.
 */
export const deliveryWakeups = (options: Options) =>
  Stream.unwrap(Effect.gen(function*() {
    const http = HttpClient.filterStatusOk(yield* HttpClient.HttpClient)
    const token = options.token === undefined ? undefined : Redacted.isRedacted(options.token) ? Redacted.value(options.token) : options.token
    const request = HttpClientRequest.get(`${options.baseUrl}/api/channels/deliveries/stream`).pipe(
      HttpClientRequest.setHeader("accept", "text/event-stream"),
      token === undefined ? (r) => r : HttpClientRequest.bearerToken(token)
    )
    const response = yield* http.execute(request)
    let frames: Array<DeliveryWakeup> = []
    const parser = Sse.makeParser((frame) => {
      if (frame._tag !== "Event" || frame.event !== "delivery.available") return
      try {
        const available = decode(JSON.parse(frame.data))
        if (available._tag === "Some") frames.push({ _tag: "Available", available: available.value })
      } catch {
        // A frame that is not JSON wakes nothing; the poll backstop covers it.
      }
    })
    const open: DeliveryWakeup = { _tag: "Open" }
    return Stream.concat(
      Stream.make(open),
      response.stream.pipe(
        Stream.decodeText,
        Stream.map((text) => {
          parser.feed(text)
          const ready = frames
          frames = []
          return ready
        }),
        Stream.flattenIterable
      )
    )
  }))
