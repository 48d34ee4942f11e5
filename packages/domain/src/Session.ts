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

/** The projected view of a session: its status and completed messages, current up to `projectedSequence`. */
export const SessionView = Schema.Struct({
  session: Session,
  status: SessionStatus,
  projectedSequence: Schema.Number,
  messages: Schema.Array(ProjectedMessage)
})
export type SessionView = typeof SessionView.Type
