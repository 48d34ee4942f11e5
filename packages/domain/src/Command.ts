import { Schema } from "effect"
import type { EventDraft } from "./SessionEvent.ts"

export const CommandKind = Schema.Literals(["prompt", "abort", "permission_respond", "question_reply", "question_reject"])
export type CommandKind = typeof CommandKind.Type

/**
 * The answers to a running turn's asks (human in the loop). They sit in the session's mailbox like any command, but
 * the turn waiting on the ask takes them out of order (ahead of queued prompts): see `CommandQueue.nextAnswer`.
 */
export const ANSWER_COMMAND_KINDS = ["permission_respond", "question_reply", "question_reject"] as const
export type AnswerCommandKind = typeof ANSWER_COMMAND_KINDS[number]
export const isAnswerKind = (kind: CommandKind): kind is AnswerCommandKind =>
  (ANSWER_COMMAND_KINDS as ReadonlyArray<string>).includes(kind)

/** An answer to a permission request: allow this once, always (for the session), or reject. */
export const PermissionResponse = Schema.Literals(["once", "always", "reject"])
export type PermissionResponse = typeof PermissionResponse.Type

/** An answer to a pending ask, as the web role queues it and the worker delivers it to the runtime. */
export type AskAnswer =
  & (
    | { readonly kind: "permission_respond"; readonly permissionId: string; readonly response: PermissionResponse }
    | { readonly kind: "question_reply"; readonly requestId: string; readonly answers: ReadonlyArray<ReadonlyArray<string>> }
    | { readonly kind: "question_reject"; readonly requestId: string }
  )
  & {
    /**
     * Who gave it: a chat's user id (the provider's), a browser session's email (or account id), an API token's id.
     * A later answer from anyone else, or a different one, is told it ("already answered by …"). Not delivered to the
     * runtime.
     */
    readonly answeredBy?: string | undefined
    /** A chat user's name as the chat shows them (Telegram `@username`), when the provider said. */
    readonly answeredByName?: string | undefined
    /** Where it was given: the binding's provider kind (`telegram`, `slack`, …), `web` (a browser session) or `api` (a token). */
    readonly answeredVia?: string | undefined
  }

/** The ask an answer resolves: its kind (`permission` / `question`) and id. */
export const askOf = (answer: AskAnswer): { readonly ask: "permission" | "question"; readonly askId: string } =>
  answer.kind === "permission_respond"
    ? { ask: "permission", askId: answer.permissionId }
    : { ask: "question", askId: answer.requestId }

/** The command payload of an answer (the answer without its kind). */
export const answerPayload = (answer: AskAnswer): CommandPayload => {
  const { kind: _kind, answeredBy, answeredByName, answeredVia, ...payload } = answer
  return {
    ...payload,
    ...(answeredBy === undefined ? {} : { answeredBy }),
    ...(answeredByName === undefined ? {} : { answeredByName }),
    ...(answeredVia === undefined ? {} : { answeredVia })
  }
}

/** The answer a command carries, when it is one. */
export const answerOf = (command: { readonly kind: CommandKind; readonly payload: CommandPayload }): AskAnswer | undefined => {
  const p = command.payload
  switch (command.kind) {
    case "permission_respond":
      return { kind: "permission_respond", permissionId: p.permissionId ?? "", response: p.response ?? "reject" }
    case "question_reply":
      return { kind: "question_reply", requestId: p.requestId ?? "", answers: p.answers ?? [] }
    case "question_reject":
      return { kind: "question_reject", requestId: p.requestId ?? "" }
    default:
      return undefined
  }
}

/** What a command row's `payload` holds: a prompt's text and agent, or an answer's fields. */
export interface CommandPayload {
  readonly text?: string
  readonly agent?: string
  readonly permissionId?: string
  readonly response?: PermissionResponse
  readonly requestId?: string
  readonly answers?: ReadonlyArray<ReadonlyArray<string>>
  /** Who gave an answer, and where (`AskAnswer.answeredBy`, `AskAnswer.answeredVia`). */
  readonly answeredBy?: string
  readonly answeredByName?: string
  readonly answeredVia?: string
}

/**
 * pending → running → acked | failed; running → pending (reaped, attempt_count + 1) | dead (attempts exhausted);
 * pending → cancelled (session aborted).
 */
export const CommandStatus = Schema.Literals(["pending", "running", "acked", "failed", "dead", "cancelled"])
export type CommandStatus = typeof CommandStatus.Type

export const PromptPayload = Schema.Struct({ text: Schema.String })
export type PromptPayload = typeof PromptPayload.Type

/** A command as a worker sees it when it starts running it. */
export interface RunnableCommand {
  readonly id: string
  readonly sessionId: string
  readonly kind: CommandKind
  readonly payload: CommandPayload
  /** 1-based number of this attempt. */
  readonly attempt: number
  /** Attempts abandoned before this one (by a crashed or stale worker). */
  readonly abandonedAttempts: number
  /** W3C `traceparent` of the request that enqueued it, when it was traced. */
  readonly traceParent?: string | undefined
}

/**
 * What a prompt turn appends before its runtime runs: the abandoned attempt it retries (if any), then `running`.
 * `CommandQueue.start` writes them in the statement that starts the command.
 */
export const turnOpeningEvents = (command: RunnableCommand): Array<EventDraft> => {
  const owner = { commandId: command.id, attempt: command.attempt }
  const opening: Array<EventDraft> = []
  if (command.abandonedAttempts > 0) {
    opening.push({
      type: "command.retried",
      payload: { commandId: command.id, abandonedAttempt: command.abandonedAttempts, attempt: command.attempt },
      ...owner
    })
  }
  opening.push({ type: "session.status", payload: { status: "running", commandId: command.id }, ...owner })
  return opening
}

/** A command that went `dead` (its attempts exhausted by crashed or lost workers). */
export interface DeadCommand {
  readonly commandId: string
  readonly kind: string
  readonly attempts: number
  readonly reason: string | null
}

/** Why a command was dead-lettered (the `cause` of its `command.dead_lettered`). */
export type DeadLetterCause = "operator" | "attempts_exhausted"

/**
 * A command taken out of its mailbox for good: `command.dead_lettered` with the command's kind, why (`cause`: an
 * operator's dead-letter, or its attempts exhausted by lost workers, then with `attempts`) and the reason, appended in
 * the transaction that marks it `dead`, so a client waiting on it learns it will never run. It changes no status by
 * itself (another command may be running). A dead answer leaves its ask pending: it takes a new answer.
 */
export const commandDeadLetteredEvent = (command: {
  readonly commandId: string
  readonly kind: string
  readonly reason: string
  readonly cause: DeadLetterCause
  readonly attempts?: number | undefined
}): EventDraft => ({
  type: "command.dead_lettered",
  payload: {
    commandId: command.commandId,
    kind: command.kind,
    reason: command.reason,
    cause: command.cause,
    ...(command.attempts === undefined ? {} : { attempts: command.attempts })
  },
  commandId: command.commandId
})

/**
 * An ask asked again because its answer was dead-lettered before its turn got it (appended after the answer's
 * `command.dead_lettered`, while the ask is still pending): the ask's own event (`permission.requested` /
 * `question.asked`) with its stored payload and `answerLost` `{commandId, reason}` — the projection keeps it pending,
 * clients show it open again, and a bound chat gets it again with its buttons, saying why (the outbox).
 */
export const askAgainEvent = (
  ask: { readonly ask: "permission" | "question"; readonly commandId: string | null; readonly payload: Record<string, unknown> },
  lost: { readonly commandId: string; readonly reason: string }
): EventDraft => ({
  type: ask.ask === "permission" ? "permission.requested" : "question.asked",
  payload: { ...ask.payload, answerLost: { commandId: lost.commandId, reason: lost.reason } },
  ...(ask.commandId === null ? {} : { commandId: ask.commandId })
})

/**
 * What is appended (like any other append) when a running command goes `dead` because its attempts were exhausted
 * (the reaper, or a claim taking the session over): `command.dead_lettered` (cause `attempts_exhausted`), as an
 * operator's dead-letter says it, then the terminal `session.idle` with outcome `dead` and the same reason, so the
 * projection leaves `running` and clients waiting for the turn's end see it end.
 */
export const deadLetteredEvents = (dead: DeadCommand): ReadonlyArray<EventDraft> => {
  const reason = dead.reason ?? "attempts exhausted"
  return [
    commandDeadLetteredEvent({ commandId: dead.commandId, kind: dead.kind, reason, cause: "attempts_exhausted", attempts: dead.attempts }),
    { type: "session.idle", payload: { outcome: "dead", commandId: dead.commandId, attempts: dead.attempts, reason }, commandId: dead.commandId }
  ]
}

/**
 * The event a dead-lettering appends after `command.dead_lettered` when it leaves a `queued` session with nothing
 * pending or running: the session is idle again (as the projection would otherwise stay `queued` for good).
 */
export const settledIdleEvent = (commandId: string): EventDraft => ({
  type: "session.status",
  payload: { status: "idle", commandId },
  commandId
})

/** Why an abort cancelled a command (the `reason` of its `command.cancelled`). */
export const CANCELLED_BY_ABORT = "session aborted"

/** Why offboarding cancelled a command (the `reason` of its `command.cancelled`). */
export const CANCELLED_BY_OFFBOARDING = "the organization was offboarded"

/**
 * A pending command that will not run: `command.cancelled` with its kind and the reason, appended in the transaction
 * that cancels it — by an abort (`reason` CANCELLED_BY_ABORT, with `abortCommandId`: the abort command then ends the
 * session with `session.aborted`) or by the org's offboarding (`reason` CANCELLED_BY_OFFBOARDING).
 */
export const commandCancelledEvent = (
  command: { readonly commandId: string; readonly kind: string },
  by: { readonly abortCommandId: string } | { readonly offboarded: true }
): EventDraft => ({
  type: "command.cancelled",
  payload: "abortCommandId" in by
    ? { commandId: command.commandId, kind: command.kind, reason: CANCELLED_BY_ABORT, abortCommandId: by.abortCommandId }
    : { commandId: command.commandId, kind: command.kind, reason: CANCELLED_BY_OFFBOARDING },
  commandId: command.commandId
})
