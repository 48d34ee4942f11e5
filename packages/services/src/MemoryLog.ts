import { askKey, type EventDraft, newEventId, nextSessionStatus, projectEvents } from "@cowork/domain"
import { PubSub } from "effect"
import type { MemoryTables } from "./MemoryDatabase.ts"

/**
 * The memory twin of Postgres `appendEvents` without a fence: allocates contiguous sequences, stores the events,
 * applies the projection delta (status rule, message rows, dropped attempts) and notifies `sessionChanges`.
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
  PubSub.publishUnsafe(db.sessionChanges, { orgId: projection.orgId, sessionId, lastSequence: projection.lastSequence })
  return projection.lastSequence
}
