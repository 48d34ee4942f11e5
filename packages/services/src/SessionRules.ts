import { Config } from "effect"

import { type AskAnswer, askOf, Conflict, type CommandPayload } from "@cowork/domain"
import { Effect } from "effect"

/** What the session stores share: the defaults of a new session, and the idempotent-prompt rule. */

export const DEFAULT_SESSION_TITLE = "Untitled session"

/** The profile a session gets when the request names none and the process configures none. */
export const DEFAULT_PROFILE_NAME = "default"

/** OPEN_COWORK_CLOUD_PROFILE_NAME: the process's profile, read by composition roots (`layerConfig`), never by a store. */
export const DefaultProfileName = Config.String("OPEN_COWORK_CLOUD_PROFILE_NAME").pipe(Config.withDefault(DEFAULT_PROFILE_NAME))

/**
 * A prompt under an idempotency key already used on the session: the same text is the same prompt (its command is
 * returned); a different text is refused, naming the key, rather than silently dropped.
 */
export const replayIdempotentPrompt = (
  existing: { readonly commandId: string; readonly text: unknown },
  key: string,
  text: string
) =>
  existing.text === text
    ? Effect.succeed({ commandId: existing.commandId, created: false })
    : Effect.fail(new Conflict({
      message: `idempotency key \`${key}\` was already used for a different prompt on this session`,
      details: { field: "idempotencyKey", idempotencyKey: key }
    }))

/** A prompt with `multitaskStrategy: "reject"` while the session has an unfinished prompt. */
export const busyConflict = (sessionId: string) =>
  new Conflict({
    message: `session ${sessionId} has a prompt queued or running (multitaskStrategy reject)`,
    details: { field: "multitaskStrategy" }
  })

/** The field of an answer body that names its ask (what a 409 names). */
const askField = (answer: AskAnswer): "permissionId" | "requestId" =>
  answer.kind === "permission_respond" ? "permissionId" : "requestId"

/** The idempotency key an answer is stored under: one answer command per ask. */
export const answerKey = (answer: AskAnswer): string => {
  const { ask, askId } = askOf(answer)
  return `answer:${ask}:${askId}`
}

/**
 * An answer that will never reach its ask — dead-lettered (by an operator, or its attempts exhausted) or cancelled —
 * is not the ask's answer: the ask, while its turn still waits, takes a new one (from anyone), and a refusal never
 * names the lost one.
 */
export const LOST_ANSWER_STATUSES: ReadonlyArray<string> = ["dead", "cancelled"]

const sameAnswer = (kind: string, payload: CommandPayload, answer: AskAnswer): boolean => {
  if (kind !== answer.kind) return false
  switch (answer.kind) {
    case "permission_respond":
      return payload.response === answer.response
    case "question_reply":
      return JSON.stringify(payload.answers ?? []) === JSON.stringify(answer.answers)
    case "question_reject":
      return true
  }
}

/** The same answerer: the same chat user on the same kind of chat, the same browser account, the same API token. */
const sameAnswerer = (payload: CommandPayload, answer: AskAnswer): boolean =>
  payload.answeredBy === answer.answeredBy && payload.answeredVia === answer.answeredVia

/**
 * Why an answer was refused, in a 409's `details.reason`: `answered` (the ask has an answer already: `answeredBy`,
 * `answeredVia`, `answeredAt` say whose, where and when; `answeredByName` a chat user's shown name), `session_aborted` (the session was stopped), `not_pending`
 * (the turn that asked has ended, or it was never asked here).
 */
export type AnswerRefusal = "answered" | "session_aborted" | "not_pending"

const askDetails = (answer: AskAnswer, reason: AnswerRefusal) => ({
  field: askField(answer),
  [askField(answer)]: askOf(answer).askId,
  reason
})

/** An existing answer to an ask, as the stores read it back. */
export interface ExistingAnswer {
  readonly commandId: string
  readonly kind: string
  readonly payload: CommandPayload
  /** When it was queued (epoch ms). */
  readonly createdAt: number
}

/** The 409 for an ask that already has an answer: whose, where and when (`details.answeredBy/answeredVia/answeredAt`). */
export const alreadyAnswered = (existing: ExistingAnswer, answer: AskAnswer) => {
  const { ask, askId } = askOf(answer)
  const by = existing.payload.answeredBy
  const at = new Date(existing.createdAt).toISOString()
  return new Conflict({
    message: `${ask} ${askId} was already answered${by === undefined ? "" : ` by ${by}`} at ${at}`,
    details: {
      ...askDetails(answer, "answered"),
      ...(by === undefined ? {} : { answeredBy: by }),
      ...(existing.payload.answeredByName === undefined ? {} : { answeredByName: existing.payload.answeredByName }),
      ...(existing.payload.answeredVia === undefined ? {} : { answeredVia: existing.payload.answeredVia }),
      answeredAt: at
    }
  })
}

/**
 * The refusal as a chat's service token may read it: who answered is kept only when it is a user of that same kind of
 * chat (the press note names them there). A web answerer's email or an API token's id is not given to a gateway: it
 * says only where and when (`answeredVia`, `answeredAt`).
 */
export const refusalForChat = (error: Conflict, providerKind: string): Conflict => {
  const details = error.details
  if (details?.reason !== "answered" || details.answeredVia === providerKind || typeof details.answeredBy !== "string") {
    return error
  }
  const { answeredBy, answeredByName: _, ...rest } = details
  const where = details.answeredVia === "web" ? " in the web app" : details.answeredVia === "api" ? " through the API" : ""
  return new Conflict({ message: error.message.replace(` by ${answeredBy}`, where), details: rest })
}

/**
 * An answer to an ask that already has one: the same answer from the same answerer is the same command (returned: a
 * retried request); anything else — another answer, or the same one from someone else — is refused, naming who
 * answered and when.
 */
export const replayAnswer = (existing: ExistingAnswer, answer: AskAnswer) =>
  sameAnswer(existing.kind, existing.payload, answer) && sameAnswerer(existing.payload, answer)
    ? Effect.succeed({ commandId: existing.commandId, created: false })
    : Effect.fail(alreadyAnswered(existing, answer))

/** An answer to an ask the session is not waiting on (never asked here, or the turn that asked has ended). */
export const askNotPending = (answer: AskAnswer) =>
  new Conflict({
    message: `${askOf(answer).ask} ${askOf(answer).askId} is no longer waiting for an answer on this session (its turn ended, or it was never asked here)`,
    details: askDetails(answer, "not_pending")
  })

/** An answer to an ask of a session that was aborted (and has no answer to it). */
export const sessionAborted = (sessionId: string, answer: AskAnswer) =>
  new Conflict({
    message: `session ${sessionId} was aborted: ${askOf(answer).ask} ${askOf(answer).askId} no longer takes answers`,
    details: askDetails(answer, "session_aborted")
  })
