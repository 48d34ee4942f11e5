import {
  askKey,
  DEFAULT_DELIVERY_MAX_ATTEMPTS,
  deliveryDrafts,
  deliveryIdempotencyKey,
  type EventDraft,
  newDeliveryId,
  newEventId,
  nextSessionStatus,
  projectEvents
} from "@cowork/domain"
import { PubSub } from "effect"
import type { MemoryTables } from "./MemoryDatabase.ts"

/**
 * The memory twin of Postgres `appendEvents` without a fence: allocates contiguous sequences, stores the events,
 * applies the projection delta (status rule, message rows, dropped attempts), inserts the channel deliveries of the
 * batch (the outbox: one per delivered event and route of the session) and notifies `sessionChanges`.
 * Returns the new last sequence, `undefined` for a session that does not exist (nothing written).
 */
export const appendToLog = (
  db: MemoryTables,
  sessionId: string,
  drafts: ReadonlyArray<EventDraft>,
  now: number
): number | undefined => {
  const projection = db.projections.get(sessionId)
  if (projection === undefined) return undefined
  const delta = projectEvents(drafts)
  const first = projection.lastSequence + 1
  const log = db.events.get(sessionId) ?? []
  db.events.set(sessionId, log)
  drafts.forEach((draft, index) => {
    log.push({
      sequence: first + index,
      type: draft.type,
      eventId: newEventId(),
      payload: draft.payload,
      createdAt: new Date(now).toISOString(),
      commandId: draft.commandId ?? null,
      attempt: draft.attempt ?? null
    })
  })
  projection.lastSequence += drafts.length
  projection.projectedSequence = projection.lastSequence
  projection.status = nextSessionStatus(projection.status, delta.status)
  projection.updatedAt = now
  for (const drop of delta.dropAttempts) {
    for (const [id, message] of projection.messages) {
      if (message.commandId === drop.commandId && message.attempt === drop.attempt) projection.messages.delete(id)
    }
  }
  const reopened = new Set(delta.asksOpened.map((row) => askKey(row.ask, row.askId)))
  const closedCommands = new Set(delta.asksClosedForCommands)
  for (const [key, ask] of projection.asks) {
    if (reopened.has(key)) continue
    if (delta.asksClearedAll || (ask.commandId !== null && closedCommands.has(ask.commandId))) projection.asks.delete(key)
  }
  for (const closed of delta.asksClosed) projection.asks.delete(askKey(closed.ask, closed.askId))
  for (const row of delta.asksOpened) {
    projection.asks.set(askKey(row.ask, row.askId), {
      ask: row.ask,
      askId: row.askId,
      commandId: row.commandId,
      payload: row.payload,
      sequence: first + row.draftIndex
    })
  }
  for (const message of delta.messages) {
    projection.messages.set(message.messageId, {
      messageId: message.messageId,
      role: message.role,
      text: message.text,
      commandId: message.commandId,
      attempt: message.attempt,
      sequence: first + message.draftIndex
    })
  }
  insertDeliveries(db, sessionId, drafts, first, log.slice(-drafts.length), now)
  PubSub.publishUnsafe(db.sessionChanges, { orgId: projection.orgId, sessionId, lastSequence: projection.lastSequence })
  return projection.lastSequence
}

/** The memory twin of the append statement's outbox insert: routes of disabled bindings get none. */
const insertDeliveries = (
  db: MemoryTables,
  sessionId: string,
  drafts: ReadonlyArray<EventDraft>,
  first: number,
  events: ReadonlyArray<{ readonly eventId: string }>,
  now: number
) => {
  const outbox = deliveryDrafts(drafts)
  if (outbox.length === 0) return
  const channels = db.channelTables
  const routes = [...channels.routes.values()].filter((route) =>
    route.sessionId === sessionId && channels.bindings.get(route.channelBindingId)?.status !== "disabled"
  )
  for (const route of routes) {
    for (const draft of outbox) {
      const eventId = events[draft.draftIndex]!.eventId
      channels.deliveries.push({
        id: newDeliveryId(),
        orgId: route.orgId,
        channelBindingId: route.channelBindingId,
        routeId: route.id,
        externalThreadId: route.externalThreadId,
        sessionId,
        eventId,
        eventSequence: first + draft.draftIndex,
        eventType: draft.eventType,
        kind: draft.kind,
        payload: drafts[draft.draftIndex]!.payload,
        idempotencyKey: deliveryIdempotencyKey(eventId, route.id),
        createdAt: now,
        status: "pending",
        attempts: 0,
        maxAttempts: DEFAULT_DELIVERY_MAX_ATTEMPTS,
        nextAttemptAt: now,
        claimExpiresAt: null,
        claimToken: null,
        lastClaimedBy: null,
        lastClaimedReplica: null,
        lastError: null,
        providerMessageId: null,
        updatedAt: now,
        sentAt: null
      })
    }
    PubSub.publishUnsafe(db.deliveryNotices, { orgId: route.orgId, channelBindingId: route.channelBindingId })
  }
}
