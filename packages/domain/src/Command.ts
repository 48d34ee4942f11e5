import { Schema } from "effect"

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
  readonly payload: { readonly text?: string }
  /** 1-based number of this attempt. */
  readonly attempt: number
  /** Attempts abandoned before this one (by a crashed or stale worker). */
  readonly abandonedAttempts: number
  /** W3C `traceparent` of the request that enqueued it, when it was traced. */
  readonly traceParent?: string | undefined
}
