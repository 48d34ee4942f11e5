import type { AnswerButton } from "@cowork/channels"
import type { ClaimedDelivery as WireDelivery } from "@cowork/domain"

const str = (value: unknown): string | undefined => (typeof value === "string" && value !== "" ? value : undefined)

/** Text of one question of opencode's `questions` list (`{question, options:[{label}]}`), tolerant of other shapes. */
const questionText = (question: unknown): string => {
  if (typeof question === "string") return question
  if (typeof question !== "object" || question === null) return ""
  const q = question as { question?: unknown; header?: unknown; options?: unknown }
  const options = Array.isArray(q.options)
    ? q.options.map((option) => str((option as { label?: unknown })?.label) ?? str(option)).filter((label): label is string => label !== undefined)
    : []
  return [str(q.header), str(q.question), options.length > 0 ? `Options: ${options.join(" / ")}` : undefined].filter((line) => line !== undefined).join("\n")
}

/**
 * The chat text of a delivery: the assistant's reply as is; a question or permission request with its id and how
 * to answer (a chat reply or a button becomes the session's human-in-the-loop command through the cloud).
 */
export const renderText = (delivery: Pick<WireDelivery, "kind" | "payload">): string => {
  const payload = (delivery.payload ?? {}) as Record<string, unknown>
  switch (delivery.kind) {
    case "message":
      return str(payload.text) ?? ""
    case "question": {
      const questions = Array.isArray(payload.questions) ? payload.questions.map(questionText).filter((q) => q !== "") : []
      return [`The session asks (request ${str(payload.requestId) ?? "?"}):`, ...questions].join("\n")
    }
    case "permission": {
      const patterns = Array.isArray(payload.patterns) ? payload.patterns.filter((p): p is string => typeof p === "string") : []
      return [
        `The session asks for permission ${str(payload.permission) ?? ""} (request ${str(payload.permissionId) ?? "?"})`,
        patterns.length > 0 ? `for ${patterns.join(", ")}` : undefined,
        "Answer once, always or reject."
      ].filter((line) => line !== undefined).join("\n")
    }
  }
}

/** Buttons for a question's options (its first question) or a permission's once / always / reject. */
export const renderButtons = (delivery: Pick<WireDelivery, "kind" | "payload">): ReadonlyArray<AnswerButton> => {
  const payload = (delivery.payload ?? {}) as Record<string, unknown>
  if (delivery.kind === "permission") {
    const requestId = str(payload.permissionId)
    if (requestId === undefined) return []
    return [["Allow once", "once"], ["Always", "always"], ["Reject", "reject"]].map(([label, value]) => ({ label: label!, requestId, value: value! }))
  }
  if (delivery.kind === "question") {
    const requestId = str(payload.requestId)
    const first = Array.isArray(payload.questions) ? payload.questions[0] as { options?: unknown } | undefined : undefined
    if (requestId === undefined) return []
    const options = Array.isArray(first?.options)
      ? first.options.map((option) => str((option as { label?: unknown })?.label) ?? str(option)).filter((label): label is string => label !== undefined)
      : []
    return [...options.map((label) => ({ label, requestId, value: label })), { label: "Reject", requestId, value: "reject" }]
  }
  return []
}
