import type { PressOutcome } from "./ChannelProvider.ts"

/**
 * What a presser is told when their press is not taken, from what the cloud said of it. One wording for every chat
 * (Telegram's callback answer, Slack's ephemeral message, the same words either way), and never a secret: the cloud's
 * refusal carries who answered (a chat user id, a web account's email, an API token id), where, and when.
 */

/** Why the cloud refused an answer (its 409's / 403's `details`), as the gateway hands it on. */
export interface AnswerRefusal {
  /**
   * `answered`: the ask has an answer already; `session_aborted`: the session was stopped; `not_pending`: the turn
   * that asked has ended (or it was never asked there); `not_admitted`: the binding's policy does not admit the user;
   * `binding_inactive`: the binding is paused or needs attention.
   */
  readonly reason: "answered" | "session_aborted" | "not_pending" | "not_admitted" | "binding_inactive"
  readonly answeredBy?: string | undefined
  /** A chat user's name as that chat shows them (Telegram `@username` or first name). */
  readonly answeredByName?: string | undefined
  /** The answer's channel: a provider kind (`telegram`, `slack`, …), `web` or `api`. */
  readonly answeredVia?: string | undefined
  /** ISO time the answer was queued. */
  readonly answeredAt?: string | undefined
}

/** `2026-12-01 04:12 UTC`, or undefined for a time that does not parse. */
const answeredAtText = (iso: string | undefined): string | undefined => {
  if (iso === undefined) return undefined
  const at = new Date(iso)
  return Number.isNaN(at.getTime()) ? undefined : `${at.toISOString().slice(0, 16).replace("T", " ")} UTC`
}

const VIA_LABEL: Readonly<Record<string, string>> = {
  web: "in the web app",
  api: "through the API",
  telegram: "in Telegram",
  slack: "in Slack",
  email: "by email",
  webhook: "through a webhook"
}

/**
 * The note for a press the cloud refused. `kind`: the provider the press came from; `presser`: its user id. An answer
 * given on the same kind of chat names its user (Slack turns the id into a mention: `answeredBy` on the outcome); one
 * given elsewhere says where (a web account's email is not shown in a chat).
 */
export const refusedPress = (refusal: AnswerRefusal | undefined, kind: string, presser: string): PressOutcome => {
  switch (refusal?.reason) {
    case "answered": {
      const at = answeredAtText(refusal.answeredAt)
      const when = at === undefined ? "" : ` at ${at}`
      const sameChat = refusal.answeredVia === kind && refusal.answeredBy !== undefined
      if (sameChat && refusal.answeredBy === presser) return { _tag: "NotTaken", note: `You already answered this${when}.` }
      if (sameChat) {
        const who = refusal.answeredByName ?? `user ${refusal.answeredBy}`
        return { _tag: "NotTaken", note: `Already answered by ${who}${when}.`, answeredBy: refusal.answeredBy, answeredAt: at }
      }
      const where = refusal.answeredVia === undefined ? undefined : VIA_LABEL[refusal.answeredVia]
      return { _tag: "NotTaken", note: `Already answered${where === undefined ? "" : ` ${where}`}${when}.` }
    }
    case "session_aborted":
      return { _tag: "NotTaken", note: "Not taken: this session was stopped, so the question no longer takes answers." }
    case "not_pending":
      return { _tag: "NotTaken", note: "Not taken: the question is no longer waiting for an answer (its turn has ended)." }
    case "not_admitted":
      return { _tag: "NotTaken", note: "Not taken: you may not answer here." }
    case "binding_inactive":
      return { _tag: "NotTaken", note: "Not taken: this chat's binding is paused or needs attention; ask an admin." }
    default:
      return { _tag: "NotTaken", note: "Not taken: the question is no longer waiting for an answer, or you may not answer it." }
  }
}

/**
 * A press another gateway replica is taking at this very moment (the same press delivered twice). That replica shows
 * the answer on the message; nothing is queued twice.
 */
export const pressInProgress: PressOutcome = {
  _tag: "NotTaken",
  note: "This press is being taken right now; its answer shows on the message in a moment. If it does not, press again."
}

/** The cloud could not be reached: nothing was taken, a new press is. */
export const pressUnavailable: PressOutcome = {
  _tag: "NotTaken",
  note: "Not taken: the service is unavailable right now. Press again in a moment."
}
