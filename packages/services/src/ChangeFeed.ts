import { Context, type Effect, type Scope, type Stream } from "effect"

/** A session's log grew: `lastSequence` is its new tip. */
export interface SessionChanged {
  readonly orgId: string
  readonly sessionId: string
  readonly lastSequence: number
}

/** Wakes a worker: a command for `sessionId` was inserted (`prompt`) or the session was aborted (`abort`). */
export interface CommandSignal {
  readonly kind: "prompt" | "abort"
  readonly sessionId: string
}

/** A channel this process listens on, and whether its listening connection currently works. */
export interface ListenerState {
  readonly channel: string
  readonly connected: boolean
}

/**
 * Cross-process notifications (Postgres `LISTEN`/`NOTIFY` in production). A process holds ONE listening
 * connection per channel and fans out in memory; readers catch up by keyset reads, so a lost notification costs
 * latency (until the backstop poll), never data.
 */
export class ChangeFeed extends Context.Service<ChangeFeed, {
  readonly sessionChanges: Effect.Effect<Stream.Stream<SessionChanged>, never, Scope.Scope>
  readonly commandSignals: Effect.Effect<Stream.Stream<CommandSignal>, never, Scope.Scope>
  readonly notifyCommand: (signal: CommandSignal) => Effect.Effect<void>
  /** The channels listened on so far (a channel starts on its first subscription) and their connection state. */
  readonly listeners: Effect.Effect<ReadonlyArray<ListenerState>>
}>()("cowork/ChangeFeed") {}
