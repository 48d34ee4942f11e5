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
export const askField = (answer: AskAnswer): "permissionId" | "requestId" =>
  answer.kind === "permission_respond" ? "permissionId" : "requestId"

/** The idempotency key an answer is stored under: one answer command per ask. */
export const answerKey = (answer: AskAnswer): string => {
  const { ask, askId } = askOf(answer)
  return `answer:${ask}:${askId}`
}

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

/**
 * An answer to an ask that already has one: the same answer is the same command (returned); another one is refused,
 * naming the ask's field (and `answeredBy`, the chat user of the first one, when it came from a chat).
 */
export const replayAnswer = (existing: { readonly commandId: string; readonly kind: string; readonly payload: CommandPayload }, answer: AskAnswer) =>
  sameAnswer(existing.kind, existing.payload, answer)
    ? Effect.succeed({ commandId: existing.commandId, created: false })
    : Effect.fail(new Conflict({
      message: `${askOf(answer).ask} ${askOf(answer).askId} was already answered differently`,
      details: {
        field: askField(answer),
        [askField(answer)]: askOf(answer).askId,
        // The chat user who answered first (a chat answer records it), for the "already answered by …" note.
        ...(existing.payload.answeredBy === undefined ? {} : { answeredBy: existing.payload.answeredBy })
      }
    }))

/** An answer to an ask the session is not waiting on (never asked, already answered, or its turn ended). */
export const askNotPending = (answer: AskAnswer) =>
  new Conflict({
    message: `${askOf(answer).ask} ${askOf(answer).askId} is not pending on this session`,
    details: { field: askField(answer), [askField(answer)]: askOf(answer).askId }
  })
