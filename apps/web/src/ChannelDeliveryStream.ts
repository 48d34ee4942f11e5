import { CurrentPrincipal } from "@cowork/domain"
import { DeliveryFeed, type DeliveryScope } from "@cowork/services"
import { Effect, Stream } from "effect"
import { HttpServerResponse } from "effect/http"
import { TokenRevocations } from "./TokenRevocations.ts"
import { WebLifecycle } from "./WebLifecycle.ts"

const SSE_HEADERS = { "cache-control": "no-cache", "x-accel-buffering": "no" }
/** The same cadence as the session streams: a comment every 15 s, reconnect after 2 s. */
const KEEP_ALIVE_INTERVAL = "15 seconds"
const RETRY_HINT_MS = 2_000

/**
 * `GET /api/channels/deliveries/stream`: one `delivery.available` frame `{channelBindingId}` whenever a binding in the
 * caller's scope gets a claimable delivery (the process's one `LISTEN` on `cowork_channel_deliveries`, fanned out in
 * memory), and one for each binding at the start so a gateway that connects claims what is already waiting. A wake-up
 * only: the gateway claims, and polls as a backstop for a lost notification. Ends when the process drains or the
 * token is revoked.
 */
export const deliveryStreamResponse = (scope: DeliveryScope, headOnly: boolean) =>
  Effect.gen(function*() {
    if (headOnly) return HttpServerResponse.empty({ status: 200, headers: { ...SSE_HEADERS, "content-type": "text/event-stream" } })
    const feed = yield* DeliveryFeed
    const lifecycle = yield* WebLifecycle
    const revocations = yield* TokenRevocations
    const principal = yield* CurrentPrincipal
    const credentialEnds = yield* revocations.watch(principal)
    const notices = yield* feed.notices
    const inScope = (bindingId: string) => scope.bindingIds === undefined || scope.bindingIds.includes(bindingId)
    const frame = (channelBindingId: string) => `event: delivery.available\ndata: ${JSON.stringify({ channelBindingId })}\n\n`
    const opening = (scope.bindingIds ?? []).map(frame).join("") || frame("*")
    const live = notices.pipe(
      Stream.filter((notice) => notice.orgId === scope.orgId && inScope(notice.channelBindingId)),
      Stream.map((notice) => frame(notice.channelBindingId))
    )
    const keepAlive = Stream.tick(KEEP_ALIVE_INTERVAL).pipe(Stream.drop(1), Stream.map(() => ": keep-alive\n\n"))
    const body = Stream.make(`retry: ${RETRY_HINT_MS}\n\n${opening}`).pipe(
      Stream.concat(Stream.merge(live, keepAlive, { haltStrategy: "left" })),
      Stream.interruptWhen(lifecycle.draining),
      Stream.interruptWhen(credentialEnds),
      Stream.encodeText
    )
    return HttpServerResponse.stream(body, { contentType: "text/event-stream", headers: SSE_HEADERS })
  })
