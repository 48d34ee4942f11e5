import type { AnswerButton } from "@cowork/channels"
import {
  askedQuestions,
  type ClaimedDelivery as WireDelivery,
  MAX_CHOICE_OPTIONS,
  MAX_CHOICE_QUESTIONS,
  questionOptionLabels
} from "@cowork/domain"

const str = (value: unknown): string | undefined => (typeof value === "string" && value !== "" ? value : undefined)

/** Text of one question of opencode's `questions` list (`{question, header?, options:[{label}]}`), tolerant of other shapes. */
const questionText = (question: unknown, number: number | undefined): string => {
  if (typeof question === "string") return number === undefined ? question : `${number}. ${question}`
  if (typeof question !== "object" || question === null) return ""
  const q = question as { question?: unknown; header?: unknown }
  const options = questionOptionLabels(question)
  const title = [str(q.header), str(q.question)].filter((line) => line !== undefined).join("\n")
  return [
    number === undefined || title === "" ? title : `${number}. ${title}`,
    options.length > 0 ? `Options: ${options.join(" / ")}` : undefined
  ].filter((line) => line !== undefined && line !== "").join("\n")
}

/**
 * The line before an ask asked again because its answer was dead-lettered before its turn got it (`answerLost`):
 * the earlier answer did not count, with the operator's reason (written for the session's users).
 */
const answerLostLine = (payload: Record<string, unknown>): ReadonlyArray<string> => {
  const lost = payload.answerLost
  if (typeof lost !== "object" || lost === null) return []
  const reason = str((lost as { reason?: unknown }).reason)
  return [`The earlier answer was not delivered${reason === undefined ? "" : ` (${reason.slice(0, 300)})`}: please answer again.`]
}

/**
 * The chat text of a delivery: the assistant's reply as is; a question or permission request with its id and how
 * to answer (a chat reply or a button becomes the session's human-in-the-loop command through the cloud). Several
 * questions are numbered like their button rows. An ask asked again after its answer was lost says so first.
 */
export const renderText = (delivery: Pick<WireDelivery, "kind" | "payload">): string => {
  const payload = (delivery.payload ?? {}) as Record<string, unknown>
  switch (delivery.kind) {
    case "message":
      return str(payload.text) ?? ""
    case "question": {
      const asked = askedQuestions(payload.questions)
      const several = asked.length > 1
      const questions = asked.map((q, index) => questionText(q, several ? index + 1 : undefined)).filter((q) => q !== "")
      return [
        ...answerLostLine(payload),
        `The session asks (request ${str(payload.requestId) ?? "?"}):`,
        ...questions,
        ...(several ? ["Choose one option per question; the answers are sent once every question has one."] : [])
      ].join("\n")
    }
    case "permission": {
      const patterns = Array.isArray(payload.patterns) ? payload.patterns.filter((p): p is string => typeof p === "string") : []
      return [
        ...answerLostLine(payload),
        `The session asks for permission ${str(payload.permission) ?? ""} (request ${str(payload.permissionId) ?? "?"})`,
        patterns.length > 0 ? `for ${patterns.join(", ")}` : undefined,
        "Answer once, always or reject."
      ].filter((line) => line !== undefined).join("\n")
    }
  }
}

/**
 * Buttons for a permission's once / always / reject; for a question, one row of option buttons per question (picks,
 * see AnswerButtons.ts: the press that gives every question an option answers them all) and a reject button. An ask
 * the buttons cannot answer whole (a question without options, more questions or options than a pick carries) gets
 * the reject button only: a chat reply answers it.
 */
export const renderButtons = (delivery: Pick<WireDelivery, "kind" | "payload">): ReadonlyArray<AnswerButton> => {
  const payload = (delivery.payload ?? {}) as Record<string, unknown>
  if (delivery.kind === "permission") {
    const requestId = str(payload.permissionId)
    if (requestId === undefined) return []
    return [["Allow once", "once"], ["Always", "always"], ["Reject", "reject"]].map(([label, value]) => ({ label: label!, requestId, value: value! }))
  }
  if (delivery.kind === "question") {
    const requestId = str(payload.requestId)
    if (requestId === undefined) return []
    const asked = askedQuestions(payload.questions)
    const questions = Math.max(1, asked.length)
    const options = (asked.length === 0 ? [undefined] : asked).map(questionOptionLabels)
    const pickable = questions <= MAX_CHOICE_QUESTIONS && options.every((labels) => labels.length > 0 && labels.length <= MAX_CHOICE_OPTIONS)
    const picks: ReadonlyArray<AnswerButton> = pickable
      ? options.flatMap((labels, question) =>
        labels.map((label, option) => ({
          label: questions > 1 ? `${question + 1}: ${label}` : label,
          requestId,
          choice: { question, option, questions },
          row: question
        }))
      )
      : []
    return [...picks, { label: "Reject", requestId, value: "reject", row: questions }]
  }
  return []
}
