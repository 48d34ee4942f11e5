import { type EventDraft, type RunnableCommand, turnOpeningEvents } from "@cowork/domain"
import type { RuntimeEvent } from "@cowork/services"

/**
 * How a prompt turn ended: acknowledged, failed by the runtime, cancelled by an abort, or interrupted by a later prompt
 * (`multitaskStrategy: interrupt`, `by` its command id; the command completes `cancelled`).
 */
export type TurnOutcome =
  | { readonly _tag: "acked" }
  | { readonly _tag: "failed"; readonly message: string }
  | { readonly _tag: "cancelled" }
  | { readonly _tag: "interrupted"; readonly by: string }

/** The command status a turn outcome completes its command with. */
export const completionOf = (outcome: TurnOutcome): "acked" | "failed" | "cancelled" =>
  outcome._tag === "interrupted" ? "cancelled" : outcome._tag

const ownerOf = (command: RunnableCommand) => ({ commandId: command.id, attempt: command.attempt })

/** The session event a runtime event becomes, owned by the command's attempt. */
export const fromRuntimeEvent = (event: RuntimeEvent, command: RunnableCommand): EventDraft => {
  const owner = ownerOf(command)
  switch (event._tag) {
    case "AssistantDelta":
      return { type: "assistant.message", payload: { messageId: event.messageId, delta: event.delta, final: false }, ...owner }
    case "AssistantMessage":
      return { type: "assistant.message", payload: { messageId: event.messageId, text: event.text, final: true }, ...owner }
    case "ToolCall":
      return {
        type: "tool.call",
        payload: {
          callId: event.callId,
          tool: event.tool,
          status: event.status ?? "completed",
          input: event.input,
          output: event.output,
          commandId: command.id
        },
        ...owner
      }
    case "Status":
      return { type: "session.status", payload: { status: event.status, detail: event.detail, commandId: command.id }, ...owner }
    case "Error":
      return { type: "runtime.error", payload: { message: event.message, commandId: command.id }, ...owner }
    case "PermissionRequested":
      return {
        type: "permission.requested",
        payload: {
          permissionId: event.permissionId,
          permission: event.permission,
          patterns: event.patterns,
          callId: event.callId,
          commandId: command.id
        },
        ...owner
      }
    case "QuestionAsked":
      return { type: "question.asked", payload: { requestId: event.requestId, questions: event.questions, commandId: command.id }, ...owner }
    case "Usage":
      return { type: "usage.recorded", payload: { messageId: event.messageId, ...event.usage, commandId: command.id }, ...owner }
  }
}

/** What a turn appends before the runtime runs: the abandoned attempt it retries (if any), then `running`. */
export const turnOpening = turnOpeningEvents

/**
 * What closes a turn, after `carried` (the final burst when it rides along): the failure, then `session.idle`. An
 * interrupted turn keeps its output: each message it was streaming becomes final with the text so far (`partial`,
 * marked `interrupted`), then `session.status` `interrupted` names the interrupting prompt.
 */
export const turnClosing = (
  command: RunnableCommand,
  outcome: TurnOutcome,
  carried: ReadonlyArray<EventDraft>,
  partial: ReadonlyMap<string, string> = new Map()
): Array<EventDraft> => {
  const owner = ownerOf(command)
  const closing: Array<EventDraft> = [...carried]
  if (outcome._tag === "failed") {
    closing.push({ type: "runtime.error", payload: { message: outcome.message, commandId: command.id }, ...owner })
  }
  if (outcome._tag === "interrupted") {
    for (const [messageId, text] of partial) {
      if (text !== "") closing.push({ type: "assistant.message", payload: { messageId, text, final: true, interrupted: true }, ...owner })
    }
    closing.push({ type: "session.status", payload: { status: "interrupted", commandId: command.id, interruptedBy: outcome.by }, ...owner })
    closing.push({ type: "session.idle", payload: { commandId: command.id, outcome: "interrupted", interruptedBy: outcome.by }, ...owner })
    return closing
  }
  closing.push({ type: "session.idle", payload: { commandId: command.id, outcome: outcome._tag }, ...owner })
  return closing
}

/** The abort command's own event. */
export const aborted = (command: RunnableCommand): EventDraft => ({
  type: "session.aborted",
  payload: { commandId: command.id },
  ...ownerOf(command)
})
