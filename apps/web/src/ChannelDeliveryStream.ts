import { DeliveryFeed, type DeliveryScope } from "@cowork/services"
import { Effect, Stream } from "effect"
import { encoded, sseHeadResponse, sseResponse } from "./SseStreams.ts"

/**
 * `GET /api/channels/deliveries/stream`: one `delivery.available` frame `{channelBindingId}` whenever a binding in the
 * caller's scope gets a claimable delivery (the process's one `LISTEN` on `cowork_channel_deliveries`, fanned out in
 * memory), and one for each binding at the start so a gateway that connects claims what is already waiting. A wake-up
 * only: the gateway claims, and polls as a backstop for a lost notification. An SSE stream like the session ones
 * (`SseStreams.ts`): one of the org's stream slots, the same keep-alive and retry hint; ends when the process drains or
 * the token is revoked.
 */
export const deliveryStreamResponse = (scope: DeliveryScope, headOnly: boolean) =>
  Effect.gen(function*() {
    if (headOnly) return sseHeadResponse()
    const feed = yield* DeliveryFeed
    const notices = yield* feed.notices
    const inScope = (bindingId: string) => scope.bindingIds === undefined || scope.bindingIds.includes(bindingId)
    const frame = (channelBindingId: string) => `event: delivery.available\ndata: ${JSON.stringify({ channelBindingId })}\n\n`
    const opening = (scope.bindingIds ?? []).map(frame).join("") || frame("*")
    const live = notices.pipe(
      Stream.filter((notice) => notice.orgId === scope.orgId && inScope(notice.channelBindingId)),
      Stream.map((notice) => frame(notice.channelBindingId))
    )
    return yield* sseResponse(scope.orgId, "delivery", encoded(Stream.concat(Stream.make(opening), live)))
  })
