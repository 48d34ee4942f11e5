import type { PermissionResponse, RuntimeFailure } from "@cowork/domain"
import { Context, type Effect, type Scope, type Stream } from "effect"

/** Token counts of one model step (opencode's `step-finish`), for usage accounting. */
interface RuntimeUsage {
  readonly input: number
  readonly output: number
  readonly reasoning: number
  readonly cacheRead: number
  readonly cacheWrite: number
}

/** What the runtime emits while it works on a prompt. */
export type RuntimeEvent =
  | { readonly _tag: "AssistantDelta"; readonly messageId: string; readonly delta: string }
  | { readonly _tag: "AssistantMessage"; readonly messageId: string; readonly text: string }
  | {
    readonly _tag: "ToolCall"
    readonly callId: string
    readonly tool: string
    readonly input: unknown
    readonly output?: unknown
    /** `running` (input known), `completed` (output) or `error`; absent means completed. */
    readonly status?: "running" | "completed" | "error" | undefined
  }
  | { readonly _tag: "Status"; readonly status: string; readonly detail?: string }
  | { readonly _tag: "Error"; readonly message: string }
  | {
    readonly _tag: "PermissionRequested"
    readonly permissionId: string
    readonly permission: string
    readonly patterns: ReadonlyArray<string>
    readonly callId?: string | undefined
  }
  | { readonly _tag: "QuestionAsked"; readonly requestId: string; readonly questions: unknown }
  | { readonly _tag: "Usage"; readonly messageId: string; readonly usage: RuntimeUsage }

/** Exported runtime state: named files (XDG dirs, workspace) as bytes, for checkpoints. */
export interface RuntimeState {
  readonly files: ReadonlyMap<string, Uint8Array>
}

export type { PermissionResponse }

export interface RuntimeSession {
  /** Runs one prompt; the stream ends when the turn ends. Interrupting the stream aborts the turn. */
  readonly prompt: (input: {
    readonly commandId: string
    readonly text: string
    readonly attempt: number
    /** The agent to run the prompt with (opencode's `build`, `plan`, …); the runtime's default when absent. */
    readonly agent?: string | undefined
  }) => Stream.Stream<RuntimeEvent, RuntimeFailure>
  readonly exportState: Effect.Effect<RuntimeState>
  readonly importState: (state: RuntimeState) => Effect.Effect<void>
  /** Answers a pending permission request of the running turn (runtimes without permissions fail). */
  readonly respondPermission?: (permissionId: string, response: PermissionResponse) => Effect.Effect<void, RuntimeFailure>
  /** Answers a pending question of the running turn: one list of chosen labels per question. */
  readonly replyQuestion?: (requestId: string, answers: ReadonlyArray<ReadonlyArray<string>>) => Effect.Effect<void, RuntimeFailure>
  readonly rejectQuestion?: (requestId: string) => Effect.Effect<void, RuntimeFailure>
  /**
   * From now on, closing the session deletes its local files (workspace, data dir): the worker asks for it when a
   * checkpoint holds the state, so a session that ends here or moves to another worker leaves no disk behind.
   */
  readonly discardOnClose?: Effect.Effect<void>
}

/** Where a session runs: the org whose keys its model calls use. */
export interface RuntimeSessionContext {
  readonly orgId?: string | undefined
}

/** Starts agent runtime sessions (OpenCode, or the deterministic scripted runtime). */
export class AgentRuntime extends Context.Service<AgentRuntime, {
  /** `scripted` or `opencode`: reported in runtime status and heartbeats. */
  readonly kind?: string | undefined
  readonly open: (sessionId: string, context?: RuntimeSessionContext) => Effect.Effect<RuntimeSession, RuntimeFailure, Scope.Scope>
}>()("cowork/AgentRuntime") {}
