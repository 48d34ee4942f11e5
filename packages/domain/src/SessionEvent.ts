import { Schema } from "effect"
import type { SessionStatus } from "./Session.ts"

export const SessionEventType = Schema.Literals([
  "session.created",
  "prompt.submitted",
  "session.status",
  "assistant.message",
  "tool.call",
  "permission.requested",
  "question.asked",
  "permission.replied",
  "question.replied",
  "question.rejected",
  "usage.recorded",
  "artifact.created",
  "runtime.error",
  "command.retried",
  "command.dead_lettered",
  "command.cancelled",
  "session.idle",
  "session.aborted"
])
export type SessionEventType = typeof SessionEventType.Type

/** A stored event, exactly as SSE `data:` carries it. */
export const SessionEvent = Schema.Struct({
  sequence: Schema.Number,
  type: Schema.String,
  eventId: Schema.String,
  payload: Schema.Unknown,
  createdAt: Schema.String
})
export type SessionEvent = typeof SessionEvent.Type

/** An event about to be appended; the log assigns sequence, id and time. */
export interface EventDraft {
  readonly type: SessionEventType
  readonly payload: Record<string, unknown>
  readonly commandId?: string | undefined
  readonly attempt?: number | undefined
}

export interface MessageRow {
  readonly messageId: string
  readonly role: "user" | "assistant"
  readonly text: string
  readonly commandId: string | null
  readonly attempt: number | null
  /** Index of the draft in its batch; the log turns it into the event's sequence. */
  readonly draftIndex: number
}

/** A permission request or question a running turn waits on, until it is answered or its turn ends. */
export interface AskRow {
  readonly ask: "permission" | "question"
  readonly askId: string
  /** The prompt command whose turn asked. */
  readonly commandId: string | null
  /** The ask's event payload (what the view shows). */
  readonly payload: Record<string, unknown>
  readonly draftIndex: number
}

/**
 * What a batch of events changes in the projection. It is O(1) per event: a status, at most one message row
 * per event, the attempts whose partial output a retry abandons, and the pending asks opened and closed — the net
 * effect of the batch in order (an ask opened and closed within the batch appears in neither list).
 */
export interface ProjectionDelta {
  readonly status: SessionStatus | undefined
  readonly messages: ReadonlyArray<MessageRow>
  readonly dropAttempts: ReadonlyArray<{ readonly commandId: string; readonly attempt: number }>
  /** Asks to store (they replace a stored ask of the same kind and id). */
  readonly asksOpened: ReadonlyArray<AskRow>
  /** Stored asks answered by this batch (never one of `asksOpened`). */
  readonly asksClosed: ReadonlyArray<{ readonly ask: "permission" | "question"; readonly askId: string }>
  /** Commands whose turn ended (or was retried): their stored asks are no longer pending (except `asksOpened`). */
  readonly asksClosedForCommands: ReadonlyArray<string>
  /** The session was aborted: no stored ask is pending any more (except `asksOpened`). */
  readonly asksClearedAll: boolean
}

/** The key of an ask in a projection: its kind and id. */
export const askKey = (ask: "permission" | "question", askId: string): string => `${ask}:${askId}`

/**
 * The session status rule: the status a batch proposes (its `ProjectionDelta.status`) applied to the current one.
 * `aborted` is final, and `queued` only moves an `idle` session (a prompt queued behind a running turn leaves it
 * `running`). Every store applies this rule; Postgres through a CASE generated from it.
 */
export const nextSessionStatus = (current: SessionStatus, proposed: SessionStatus | undefined): SessionStatus => {
  if (proposed === undefined || current === "aborted") return current
  if (proposed === "queued" && current !== "idle") return current
  return proposed
}

const str = (value: unknown): string => (typeof value === "string" ? value : "")

export const projectEvents = (drafts: ReadonlyArray<EventDraft>): ProjectionDelta => {
  let status: SessionStatus | undefined
  const messages: Array<MessageRow> = []
  const dropAttempts: Array<{ commandId: string; attempt: number }> = []
  const opened = new Map<string, AskRow>()
  const closed = new Map<string, { ask: "permission" | "question"; askId: string }>()
  const closedForCommands = new Set<string>()
  let clearedAll = false
  const openAsk = (row: AskRow) => {
    const key = askKey(row.ask, row.askId)
    closed.delete(key)
    opened.set(key, row)
  }
  const closeAsk = (ask: "permission" | "question", askId: unknown) => {
    if (typeof askId !== "string") return
    const key = askKey(ask, askId)
    opened.delete(key)
    closed.set(key, { ask, askId })
  }
  const closeAsksOf = (commandId: string | undefined) => {
    if (commandId === undefined) return
    for (const [key, row] of opened) if (row.commandId === commandId) opened.delete(key)
    closedForCommands.add(commandId)
  }
  drafts.forEach((draft, draftIndex) => {
    const p = draft.payload
    switch (draft.type) {
      case "permission.requested":
        if (typeof p.permissionId === "string") {
          openAsk({ ask: "permission", askId: p.permissionId, commandId: draft.commandId ?? null, payload: p, draftIndex })
        }
        break
      case "question.asked":
        if (typeof p.requestId === "string") {
          openAsk({ ask: "question", askId: p.requestId, commandId: draft.commandId ?? null, payload: p, draftIndex })
        }
        break
      case "permission.replied":
        closeAsk("permission", p.permissionId)
        break
      case "question.replied":
      case "question.rejected":
        closeAsk("question", p.requestId)
        break
      case "prompt.submitted":
        if (status !== "running") status = "queued"
        messages.push({
          messageId: str(p.commandId),
          role: "user",
          text: str(p.text),
          commandId: str(p.commandId) || null,
          attempt: null,
          draftIndex
        })
        break
      case "session.status":
        if (p.status === "running" || p.status === "idle" || p.status === "queued") status = p.status
        break
      case "session.idle":
        status = "idle"
        closeAsksOf(draft.commandId ?? (typeof p.commandId === "string" ? p.commandId : undefined))
        break
      case "session.aborted":
        status = "aborted"
        opened.clear()
        clearedAll = true
        break
      case "assistant.message":
        if (p.final === true) {
          messages.push({
            messageId: str(p.messageId),
            role: "assistant",
            text: str(p.text),
            commandId: draft.commandId ?? null,
            attempt: draft.attempt ?? null,
            draftIndex
          })
        }
        break
      case "command.retried":
        if (typeof p.commandId === "string" && typeof p.abandonedAttempt === "number") {
          dropAttempts.push({ commandId: p.commandId, attempt: p.abandonedAttempt })
          closeAsksOf(p.commandId)
        }
        break
      default:
        break
    }
  })
  return {
    status,
    messages,
    dropAttempts,
    asksOpened: [...opened.values()],
    asksClosed: [...closed.values()],
    asksClosedForCommands: [...closedForCommands],
    asksClearedAll: clearedAll
  }
}
