import { Context, Effect, Layer, PubSub, type Scope, Stream } from "effect"
import { MemoryDatabase } from "./MemoryDatabase.ts"

/** A session's log grew: `lastSequence` is its new tip. */
export interface SessionChanged {
  readonly orgId: string
  readonly sessionId: string
  readonly lastSequence: number
}

/**
 * Wakes a worker: a command for `sessionId` was inserted (`prompt`), the session was aborted (`abort`), a draining
 * worker gave its lease up with work left (`released`: claim it now, not on the next poll), an answer to a running
 * turn's ask was queued (`answer`: the turn waiting on it takes it), or a prompt with `multitaskStrategy: interrupt`
 * was queued while `commandId` ran (`interrupt`: that turn stops; `by` is the interrupting prompt).
 */
export type CommandSignal =
  | { readonly kind: "prompt" | "abort" | "released" | "answer"; readonly sessionId: string }
  | { readonly kind: "interrupt"; readonly sessionId: string; readonly commandId: string; readonly by: string }

/**
 * A credential stopped being valid: an API token revoked (`token`), a browser session ended (`browser_session`), or
 * every credential of an org ended at once (`org`, offboarding). Caches of verified credentials drop it and the
 * event streams opened with it end, on every web process.
 */
export interface Revocation {
  readonly kind: "token" | "browser_session" | "org"
  readonly id: string
}

/** The `NOTIFY` channel revocations travel on: the session-events channel, so a web process keeps ONE listener. */
export const REVOCATIONS_CHANNEL = "cowork_events"

/** A channel's listening connection was re-established; notifications sent since `lostAt` (epoch ms) were lost. */
export interface Resync {
  readonly channel: string
  readonly lostAt: number
}

/** A channel this process listens on, and whether its listening connection currently works. */
export interface ListenerState {
  readonly channel: string
  readonly connected: boolean
}

/**
 * Cross-process notifications (Postgres `LISTEN`/`NOTIFY` in production). A process holds ONE listening
 * connection for all its channels and fans out in memory; readers catch up by keyset reads, so a lost notification costs
 * latency (until the backstop poll), never data.
 */
export class ChangeFeed extends Context.Service<ChangeFeed, {
  readonly sessionChanges: Effect.Effect<Stream.Stream<SessionChanged>, never, Scope.Scope>
  readonly commandSignals: Effect.Effect<Stream.Stream<CommandSignal>, never, Scope.Scope>
  readonly notifyCommand: (signal: CommandSignal) => Effect.Effect<void>
  /** Revoked credentials, as the stores that revoke them announce them (`REVOCATIONS_CHANNEL`). */
  readonly revocations: Effect.Effect<Stream.Stream<Revocation>, never, Scope.Scope>
  /**
   * A workflow was created or resumed, or a run started by hand or webhook: the scheduler, which sleeps until the
   * next due slot, re-plans its wake (sent on the commands channel, so it costs no extra listening connection).
   */
  readonly workflowChanges: Effect.Effect<Stream.Stream<void>, never, Scope.Scope>
  /** The channels listened on so far (a channel starts on its first subscription) and their connection state. */
  readonly listeners: Effect.Effect<ReadonlyArray<ListenerState>>
  /**
   * The channel whose listening connection was just re-established (its `LISTEN` already active): notifications
   * sent while it was down were lost, so subscribers catch up by reads now instead of waiting for a backstop poll.
   */
  readonly resyncs: Effect.Effect<Stream.Stream<Resync>, never, Scope.Scope>
}>()("cowork/ChangeFeed") {
  /** The memory database's notifications: delivered in process, never lost, so `listeners` is empty and nothing resyncs. */
  static readonly layerMemory: Layer.Layer<ChangeFeed, never, MemoryDatabase> = Layer.effect(
    ChangeFeed,
    Effect.map(Effect.service(MemoryDatabase), (db) =>
      ChangeFeed.of({
        sessionChanges: Effect.map(PubSub.subscribe(db.sessionChanges), Stream.fromSubscription),
        commandSignals: Effect.map(PubSub.subscribe(db.commandSignals), Stream.fromSubscription),
        notifyCommand: (signal) => Effect.asVoid(PubSub.publish(db.commandSignals, signal)),
        revocations: Effect.map(PubSub.subscribe(db.revocations), Stream.fromSubscription),
        workflowChanges: Effect.map(PubSub.subscribe(db.workflowChanges), Stream.fromSubscription),
        listeners: Effect.succeed([]),
        resyncs: Effect.succeed(Stream.never)
      }))
  )
}
