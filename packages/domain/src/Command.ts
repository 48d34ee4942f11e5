import { Schema } from "effect"
import type { EventDraft } from "./SessionEvent.ts"

export const CommandKind = Schema.Literals(["prompt", "abort"])
export type CommandKind = typeof CommandKind.Type

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
  readonly payload: { readonly text?: string; readonly agent?: string }
  /** 1-based number of this attempt. */
  readonly attempt: number
  /** Attempts abandoned before this one (by a crashed or stale worker). */
  readonly abandonedAttempts: number
  /** W3C `traceparent` of the request that enqueued it, when it was traced. */
  readonly traceParent?: string | undefined
}

/** A command that went `dead` (its attempts exhausted by crashed or lost workers). */
export interface DeadCommand {
  readonly commandId: string
  readonly attempts: number
  readonly reason: string | null
}

/**
 * The terminal event appended (like any other append) when a command goes `dead`: `session.idle` with outcome
 * `dead` and the reason, so the projection leaves `running` and SSE clients learn the turn is over.
 */
export const deadLetteredEvent = (dead: DeadCommand): EventDraft => ({
  type: "session.idle",
  payload: { outcome: "dead", commandId: dead.commandId, attempts: dead.attempts, reason: dead.reason ?? "attempts exhausted" },
  commandId: dead.commandId
})
