import type { RuntimeFailure } from "@cowork/domain"
import { Context, type Effect, type Scope, type Stream } from "effect"

/** What the runtime emits while it works on a prompt. */
export type RuntimeEvent =
  | { readonly _tag: "AssistantDelta"; readonly messageId: string; readonly delta: string }
  | { readonly _tag: "AssistantMessage"; readonly messageId: string; readonly text: string }
  | { readonly _tag: "ToolCall"; readonly callId: string; readonly tool: string; readonly input: unknown; readonly output?: unknown }
  | { readonly _tag: "Status"; readonly status: string; readonly detail?: string }
  | { readonly _tag: "Error"; readonly message: string }

/** Exported runtime state: named files (XDG dirs, workspace) as bytes, for checkpoints. */
export interface RuntimeState {
  readonly files: ReadonlyMap<string, Uint8Array>
}

export interface RuntimeSession {
  /** Runs one prompt; the stream ends when the turn ends. Interrupting the stream aborts the turn. */
  readonly prompt: (input: { readonly commandId: string; readonly text: string; readonly attempt: number }) => Stream.Stream<RuntimeEvent, RuntimeFailure>
  readonly exportState: Effect.Effect<RuntimeState>
  readonly importState: (state: RuntimeState) => Effect.Effect<void>
}

/** Starts agent runtime sessions (OpenCode, or the deterministic scripted runtime). */
export class AgentRuntime extends Context.Service<AgentRuntime, {
  readonly open: (sessionId: string) => Effect.Effect<RuntimeSession, RuntimeFailure, Scope.Scope>
}>()("cowork/AgentRuntime") {}
