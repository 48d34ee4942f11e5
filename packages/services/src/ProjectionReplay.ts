import { askKey, type EventDraft, nextSessionStatus, projectEvents, type ProjectedMessage, type SessionEventType, type SessionStatus, type StoredAsk } from "@cowork/domain"

/** A stored event as a replay reads it. */
export interface ReplayEvent {
  readonly sequence: number
  readonly type: string
  readonly payload: unknown
  readonly commandId: string | null
  readonly attempt: number | null
}

/**
 * Replays a whole log through `projectEvents` and the session status rule, per event: the status, and the message
 * rows left once later writes overwrote a message id and retries dropped the abandoned attempts' output, and the asks
 * still pending. Every
 * `Projections` store compares its projection with this and rebuilds from it.
 */
export const replayLog = (events: ReadonlyArray<ReplayEvent>) => {
  let status: SessionStatus = "idle"
  const messages = new Map<string, ProjectedMessage>()
  const dropped = new Set<string>()
  const asks = new Map<string, StoredAsk>()
  for (const event of events) {
    const draft: EventDraft = {
      type: event.type as SessionEventType,
      payload: (event.payload ?? {}) as Record<string, unknown>,
      commandId: event.commandId ?? undefined,
      attempt: event.attempt ?? undefined
    }
    const delta = projectEvents([draft])
    status = nextSessionStatus(status, delta.status)
    for (const [key, ask] of asks) {
      if (delta.asksClearedAll || (ask.commandId !== null && delta.asksClosedForCommands.includes(ask.commandId))) asks.delete(key)
    }
    for (const closed of delta.asksClosed) asks.delete(askKey(closed.ask, closed.askId))
    for (const row of delta.asksOpened) {
      asks.set(askKey(row.ask, row.askId), { ask: row.ask, askId: row.askId, commandId: row.commandId, payload: row.payload, sequence: event.sequence })
    }
    for (const drop of delta.dropAttempts) dropped.add(`${drop.commandId} ${drop.attempt}`)
    for (const message of delta.messages) {
      messages.set(message.messageId, {
        messageId: message.messageId,
        role: message.role,
        text: message.text,
        commandId: message.commandId,
        attempt: message.attempt,
        sequence: event.sequence
      })
    }
  }
  const kept = [...messages.values()].filter((m) => m.attempt === null || !dropped.has(`${m.commandId} ${m.attempt}`))
  return { status, messages: kept.sort((a, b) => a.sequence - b.sequence), asks: [...asks.values()] }
}

/** Stored rows equal replayed ones, in order. */
export const sameMessages = (stored: ReadonlyArray<ProjectedMessage>, expected: ReadonlyArray<ProjectedMessage>) =>
  stored.length === expected.length &&
  stored.every((row, i) => {
    const other = expected[i]!
    return row.messageId === other.messageId && row.role === other.role && row.text === other.text &&
      row.commandId === other.commandId && (row.attempt ?? null) === (other.attempt ?? null) && row.sequence === other.sequence
  })

/** Stored pending asks equal replayed ones (kind, id, owning command and sequence), in any order. */
export const sameAsks = (stored: ReadonlyArray<StoredAsk>, expected: ReadonlyArray<StoredAsk>) => {
  const key = (a: StoredAsk) => `${a.ask} ${a.askId} ${a.commandId ?? ""} ${a.sequence}`
  const left = stored.map(key).sort()
  const right = expected.map(key).sort()
  return left.length === right.length && left.every((k, i) => k === right[i])
}
