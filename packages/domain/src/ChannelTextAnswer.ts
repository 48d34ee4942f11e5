import type { AskAnswer } from "./Command.ts"
import type { SessionView } from "./Session.ts"

/** What a plain chat reply says to a pending permission request (`once` / `always` / `reject`), case-insensitive. */
const PERMISSION_WORDS: Readonly<Record<string, "once" | "always" | "reject">> = {
  once: "once",
  allow: "once",
  yes: "once",
  always: "always",
  reject: "reject",
  deny: "reject",
  no: "reject"
}

/**
 * A plain chat reply on a thread whose session waits on an ask (Telegram, Slack, email, webhook alike): it answers
 * the oldest pending question with its text — an ask of several questions with one line per question when the reply
 * has exactly that many non-empty lines, else every question with the whole text; with no question pending, a reply
 * that is one word of
 * once/allow/yes, always, reject/deny/no answers the oldest pending permission request. Anything else (or nothing
 * pending) is a prompt, as before.
 */
export const chatTextAnswer = (
  pending: Pick<SessionView, "pendingPermissions" | "pendingQuestions">,
  text: string
): AskAnswer | undefined => {
  const reply = text.trim()
  if (reply === "") return undefined
  const question = pending.pendingQuestions[0]
  if (question !== undefined) {
    const count = Array.isArray(question.questions) ? Math.max(1, question.questions.length) : 1
    const lines = reply.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== "")
    const answers = count > 1 && lines.length === count ? lines.map((line) => [line]) : Array.from({ length: count }, () => [reply])
    return { kind: "question_reply", requestId: question.requestId, answers }
  }
  const permission = pending.pendingPermissions[0]
  const response = PERMISSION_WORDS[reply.toLowerCase().replace(/[.!]+$/, "")]
  if (permission !== undefined && response !== undefined) {
    return { kind: "permission_respond", permissionId: permission.permissionId, response }
  }
  return undefined
}
