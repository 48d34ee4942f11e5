import { Schema } from "effect"

export const SessionStatus = Schema.Literals(["idle", "queued", "running", "aborted"])
export type SessionStatus = typeof SessionStatus.Type

export const MAX_TITLE_LENGTH = 200
export const MAX_PROMPT_LENGTH = 100_000
export const MAX_IDEMPOTENCY_KEY_LENGTH = 200

export const Session = Schema.Struct({
  id: Schema.String,
  orgId: Schema.String,
  title: Schema.String,
  profileName: Schema.String,
  status: SessionStatus,
  lastSequence: Schema.Number,
  createdAt: Schema.String,
  updatedAt: Schema.String
})
export type Session = typeof Session.Type

export const ProjectedMessage = Schema.Struct({
  messageId: Schema.String,
  role: Schema.Literals(["user", "assistant"]),
  text: Schema.String,
  commandId: Schema.NullOr(Schema.String),
  attempt: Schema.NullOr(Schema.Number),
  sequence: Schema.Number
})
export type ProjectedMessage = typeof ProjectedMessage.Type

/** A permission request the running turn waits on (`permission.requested`), until answered or the turn ends. */
export const PendingPermission = Schema.Struct({
  permissionId: Schema.String,
  /** What the agent asks to do (opencode's `edit`, `bash`, …). */
  permission: Schema.String,
  patterns: Schema.Array(Schema.String),
  callId: Schema.NullOr(Schema.String),
  commandId: Schema.NullOr(Schema.String),
  sequence: Schema.Number
})
export type PendingPermission = typeof PendingPermission.Type

/** A question the running turn waits on (`question.asked`): `questions` as the runtime asked them. */
export const PendingQuestion = Schema.Struct({
  requestId: Schema.String,
  questions: Schema.Unknown,
  commandId: Schema.NullOr(Schema.String),
  sequence: Schema.Number
})
export type PendingQuestion = typeof PendingQuestion.Type

/** Messages in one view (`GET /api/sessions/:id/view?limit=`) when the client names no limit: the newest this many. */
export const DEFAULT_VIEW_MESSAGES = 100
/** The most messages one view returns; older ones are paged with `?cursor=` (the view's `nextCursor`). */
export const MAX_VIEW_MESSAGES = 500

/**
 * The projected view of a session: its status, its newest completed messages (at most a page, oldest first) and the
 * asks its running turn waits on, current up to `projectedSequence` (the SSE resume cursor, whatever page of messages
 * the view holds). `nextCursor` pages to the messages before these (`?cursor=`); `null` when these are the first.
 */
export const SessionView = Schema.Struct({
  session: Session,
  status: SessionStatus,
  projectedSequence: Schema.Number,
  messages: Schema.Array(ProjectedMessage),
  nextCursor: Schema.NullOr(Schema.String),
  pendingPermissions: Schema.Array(PendingPermission),
  pendingQuestions: Schema.Array(PendingQuestion)
})
export type SessionView = typeof SessionView.Type

/** A stored pending ask, as the projections keep it. */
export interface StoredAsk {
  readonly ask: "permission" | "question"
  readonly askId: string
  readonly commandId: string | null
  readonly payload: Record<string, unknown>
  readonly sequence: number
}

const stringOr = (value: unknown, fallback: string): string => typeof value === "string" ? value : fallback

/** The view's two lists from stored asks, oldest first. */
export const pendingAsksView = (asks: ReadonlyArray<StoredAsk>): {
  readonly pendingPermissions: ReadonlyArray<PendingPermission>
  readonly pendingQuestions: ReadonlyArray<PendingQuestion>
} => {
  const sorted = [...asks].sort((a, b) => a.sequence - b.sequence)
  return {
    pendingPermissions: sorted.filter((a) => a.ask === "permission").map((a) => ({
      permissionId: a.askId,
      permission: stringOr(a.payload.permission, "unknown"),
      patterns: Array.isArray(a.payload.patterns) ? a.payload.patterns.filter((x): x is string => typeof x === "string") : [],
      callId: typeof a.payload.callId === "string" ? a.payload.callId : null,
      commandId: a.commandId,
      sequence: a.sequence
    })),
    pendingQuestions: sorted.filter((a) => a.ask === "question").map((a) => ({
      requestId: a.askId,
      questions: a.payload.questions ?? null,
      commandId: a.commandId,
      sequence: a.sequence
    }))
  }
}
