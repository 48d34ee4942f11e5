import type { SessionEvent } from "@cowork/domain"

/** One SSE frame: optional `id:`, `event:`, one `data:` line of JSON. */
export const frame = (fields: { readonly id?: string; readonly event: string; readonly data: unknown }): string =>
  `${fields.id === undefined ? "" : `id: ${fields.id}\n`}event: ${fields.event}\ndata: ${JSON.stringify(fields.data)}\n\n`

/** A session event as its frame (`id` = sequence): rendered once per event, shared by every subscriber. */
export const eventFrame = (event: SessionEvent): string =>
  frame({
    id: String(event.sequence),
    event: event.type,
    data: { sequence: event.sequence, type: event.type, eventId: event.eventId, payload: event.payload, createdAt: event.createdAt }
  })
