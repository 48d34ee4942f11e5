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
  "usage.recorded",
  "artifact.created",
  "runtime.error",
  "command.retried",
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

/**
 * What a batch of events changes in the projection. It is O(1) per event: a status, at most one message row
 * per event, and the attempts whose partial output a retry abandons.
 */
export interface ProjectionDelta {
  readonly status: SessionStatus | undefined
  readonly messages: ReadonlyArray<MessageRow>
  readonly dropAttempts: ReadonlyArray<{ readonly commandId: string; readonly attempt: number }>
}

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
  drafts.forEach((draft, draftIndex) => {
    const p = draft.payload
    switch (draft.type) {
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
        break
      case "session.aborted":
        status = "aborted"
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
        }
        break
      default:
        break
    }
  })
  return { status, messages, dropAttempts }
}
