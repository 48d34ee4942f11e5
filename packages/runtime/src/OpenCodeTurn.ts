import type { RuntimeEvent } from "@cowork/services"
import type { OpenCodeEvent } from "./OpenCodeProcess.ts"

/**
 * Turns opencode's event stream for one session into our runtime events, one prompt turn at a time:
 *
 * - `message.part.delta` (`field: "text"`) of an assistant text part → `AssistantDelta`
 * - an assistant message completing (`message.updated` with `time.completed`) → `AssistantMessage` with the
 *   text of its text parts (once per message; a message without text, e.g. a tool step, emits none)
 * - a `tool` part → `ToolCall` when it starts running (input) and when it completes or errs (output)
 * - `step-finish` → `Usage` (its token counts)
 * - `permission.asked` → `PermissionRequested`, `question.asked` → `QuestionAsked`
 * - `session.status` other than idle → `Status` (`busy`, `retry` with its message)
 * - `session.error` → `Error` (except the abort we asked for)
 * - `session.idle` (or `session.status` idle) after the turn started → the turn is over
 */
export class OpenCodeTurn {
  private readonly assistantMessages = new Set<string>()
  private readonly finalized = new Set<string>()
  private readonly textParts = new Map<string, { readonly messageId: string; text: string }>()
  private readonly toolStates = new Map<string, string>()
  private readonly messageOrder: Array<string> = []
  private busy = false
  done = false

  readonly sessionId: string

  constructor(sessionId: string) {
    this.sessionId = sessionId
  }

  /** The runtime events an opencode event yields for this turn. */
  accept(event: OpenCodeEvent): ReadonlyArray<RuntimeEvent> {
    const props = (event as { properties?: Record<string, unknown> }).properties ?? {}
    const sessionId = (props.sessionID as string | undefined) ??
      ((props.info as { sessionID?: string } | undefined)?.sessionID) ??
      ((props.part as { sessionID?: string } | undefined)?.sessionID)
    if (sessionId !== this.sessionId || this.done) return []
    switch (event.type) {
      case "message.updated": {
        const info = props.info as { id: string; role: string; time?: { completed?: number }; error?: { name?: string } }
        if (info.role !== "assistant") return []
        if (!this.assistantMessages.has(info.id)) {
          this.assistantMessages.add(info.id)
          this.messageOrder.push(info.id)
        }
        if (info.time?.completed !== undefined) return this.finalize(info.id)
        return []
      }
      case "message.part.updated": {
        const part = props.part as {
          id: string
          messageID: string
          type: string
          text?: string
          tool?: string
          callID?: string
          state?: { status: string; input?: unknown; output?: unknown; error?: unknown }
          tokens?: { input?: number; output?: number; reasoning?: number; cache?: { read?: number; write?: number } }
        }
        if (!this.assistantMessages.has(part.messageID)) return []
        if (part.type === "text") {
          const known = this.textParts.get(part.id)
          if (known === undefined) this.textParts.set(part.id, { messageId: part.messageID, text: part.text ?? "" })
          else known.text = part.text ?? known.text
          return []
        }
        if (part.type === "tool" && part.state !== undefined && part.callID !== undefined) {
          const status = part.state.status
          if (this.toolStates.get(part.callID) === status || (status !== "running" && status !== "completed" && status !== "error")) {
            return []
          }
          this.toolStates.set(part.callID, status)
          return [{
            _tag: "ToolCall",
            callId: part.callID,
            tool: part.tool ?? "unknown",
            input: part.state.input ?? {},
            status,
            ...(status === "completed" ? { output: part.state.output } : {}),
            ...(status === "error" ? { output: { error: part.state.error } } : {})
          }]
        }
        if (part.type === "step-finish" && part.tokens !== undefined) {
          const tokens = part.tokens
          return [{
            _tag: "Usage",
            messageId: part.messageID,
            usage: {
              input: tokens.input ?? 0,
              output: tokens.output ?? 0,
              reasoning: tokens.reasoning ?? 0,
              cacheRead: tokens.cache?.read ?? 0,
              cacheWrite: tokens.cache?.write ?? 0
            }
          }]
        }
        return []
      }
      case "message.part.delta": {
        const delta = props as { messageID: string; partID: string; field: string; delta: string }
        if (delta.field !== "text" || !this.assistantMessages.has(delta.messageID)) return []
        const part = this.textParts.get(delta.partID)
        if (part === undefined) this.textParts.set(delta.partID, { messageId: delta.messageID, text: delta.delta })
        return delta.delta === "" ? [] : [{ _tag: "AssistantDelta", messageId: delta.messageID, delta: delta.delta }]
      }
      case "permission.asked": {
        const asked = props as { id: string; permission: string; patterns?: Array<string>; tool?: { callID?: string } }
        return [{
          _tag: "PermissionRequested",
          permissionId: asked.id,
          permission: asked.permission,
          patterns: asked.patterns ?? [],
          callId: asked.tool?.callID
        }]
      }
      case "question.asked": {
        const asked = props as { id: string; questions: unknown }
        return [{ _tag: "QuestionAsked", requestId: asked.id, questions: asked.questions }]
      }
      case "session.status": {
        const status = props.status as { type: string; message?: string }
        if (status.type === "idle") return this.busy ? this.finish() : []
        this.busy = true
        if (status.type === "retry") return [{ _tag: "Status", status: "retry", ...(status.message === undefined ? {} : { detail: status.message }) }]
        return []
      }
      case "session.idle":
        return this.busy ? this.finish() : []
      case "session.error": {
        const error = props.error as { name?: string; data?: { message?: string } } | undefined
        if (error?.name === "MessageAbortedError") return []
        return [{ _tag: "Error", message: `${error?.name ?? "opencode error"}${error?.data?.message === undefined ? "" : `: ${error.data.message}`}` }]
      }
      default:
        return []
    }
  }

  private finalize(messageId: string): ReadonlyArray<RuntimeEvent> {
    if (this.finalized.has(messageId)) return []
    this.finalized.add(messageId)
    const text = [...this.textParts.values()].filter((part) => part.messageId === messageId).map((part) => part.text).join("")
    return text === "" ? [] : [{ _tag: "AssistantMessage", messageId, text }]
  }

  private finish(): ReadonlyArray<RuntimeEvent> {
    const events = this.messageOrder.flatMap((messageId) => this.finalize(messageId))
    this.done = true
    return events
  }
}
