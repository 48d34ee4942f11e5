import type { EventDraft, Lease, SessionEvent, StaleOwner, StaleOwnerOperation } from "@cowork/domain"
import type { SessionChanged } from "./ChangeFeed.ts"
import { Context, Effect, Layer } from "effect"
import { makeEventLogMemory } from "./EventLogMemory.ts"
import { MemoryDatabase } from "./MemoryDatabase.ts"

/** How the command that produced a batch ends, committed in the same fenced write as the batch. */
export interface CommandCompletion {
  readonly commandId: string
  readonly outcome: "acked" | "failed" | "cancelled"
  readonly error?: string | undefined
  /**
   * The checkpoint saved for this command: the lease row's `checkpoint_version` moves to it in the same fenced
   * statement as the ack, so a stale owner can never advance it.
   */
  readonly checkpointVersion?: number | undefined
}

/** What a refused `append` was: a plain append, a command completion, or a completion that acks a checkpoint. */
export const staleAppendOperation = (completion: CommandCompletion | undefined): StaleOwnerOperation =>
  completion === undefined ? "append" : completion.checkpointVersion === undefined ? "complete" : "checkpoint"

/** What `close` did: the new last sequence, and whether the lease was released (the mailbox was empty). */
export interface ClosedCommand {
  readonly lastSequence: number
  readonly released: boolean
}

export interface EventBounds {
  /** Lowest sequence still retained (1 when nothing was pruned). */
  readonly earliestSequence: number
  readonly latestSequence: number
}

/**
 * The per-session append-only log with a contiguous `sequence`, and the projection it feeds. Events and their
 * projection update commit together; the projection update is O(1) per event.
 */
export class EventLog extends Context.Service<EventLog, {
  /**
   * Fenced append by the lease owner: applied only while `(sessionId, epoch)` is the live, unexpired lease (and,
   * with a completion, while the command is still `running` under that epoch). Otherwise fails with
   * `StaleOwner` and nothing is written. Returns the new last sequence.
   */
  readonly append: (
    lease: Lease,
    drafts: ReadonlyArray<EventDraft>,
    completion?: CommandCompletion
  ) => Effect.Effect<number, StaleOwner>
  /**
   * The closing write of a command: `append` with its completion and, when no command of the session is left
   * `pending`, the lease released in the same write (as `LeaseStore.releaseIfIdle`). Same fence, same refusal.
   */
  readonly close: (
    lease: Lease,
    drafts: ReadonlyArray<EventDraft>,
    completion: CommandCompletion
  ) => Effect.Effect<ClosedCommand, StaleOwner>
  /** Events with `sequence > after`, ascending, at most `limit`. */
  readonly read: (sessionId: string, after: number, limit: number) => Effect.Effect<ReadonlyArray<SessionEvent>>
  readonly bounds: (sessionId: string) => Effect.Effect<EventBounds>
  /** The current tip of each given session, in one read (sessions that do not exist are absent). */
  readonly latestSequences: (sessionIds: ReadonlyArray<string>) => Effect.Effect<ReadonlyMap<string, number>>
  /**
   * The sessions of these orgs whose log grew at or after `sinceMs` (epoch ms, the store's clock), with their tips;
   * at most `limit`, oldest change first. A listener that lost notifications reads what it missed here.
   */
  readonly changedSince: (
    orgIds: ReadonlyArray<string>,
    sinceMs: number,
    limit: number
  ) => Effect.Effect<ReadonlyArray<SessionChanged>>
  /** Retention: drops events with `sequence < before` (the projection is unaffected). */
  readonly prune: (sessionId: string, before: number) => Effect.Effect<void>
}>()("cowork/EventLog") {
  static readonly layerMemory: Layer.Layer<EventLog, never, MemoryDatabase> = Layer.effect(
    EventLog,
    Effect.map(Effect.service(MemoryDatabase), makeEventLogMemory)
  )
}
