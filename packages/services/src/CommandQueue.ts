import type { Lease, RunnableCommand, StaleOwner } from "@cowork/domain"
import { Context, Effect, Layer, type Option } from "effect"
import { makeCommandQueueMemory } from "./CommandQueueMemory.ts"
import { MemoryDatabase } from "./MemoryDatabase.ts"

/** Pending commands a backlog scan counts at most (diagnostics and the queue-depth gauges). */
export const QUEUE_SCAN_LIMIT = 10_000

/** A bounded look at the pending backlog across every session (operators, the queue-depth gauges). */
export interface QueueBacklog {
  /** Pending commands counted, at most the scan limit. */
  readonly depthEstimate: number
  /** True when the scan stopped at its limit: the real depth is at least `depthEstimate`. */
  readonly capped: boolean
  /** Age of the oldest pending command by the store's clock; 0 when nothing is pending. */
  readonly oldestAgeMs: number
}

/** The session mailbox as its owner sees it: the next pending command, in order, fenced by the lease. */
export class CommandQueue extends Context.Service<CommandQueue, {
  /**
   * Marks the oldest `pending` command of the leased session `running` under the lease epoch and returns it;
   * `None` when the mailbox is empty. Fails with `StaleOwner` when the lease is no longer live.
   */
  readonly next: (lease: Lease) => Effect.Effect<Option.Option<RunnableCommand>, StaleOwner>
  /**
   * Like `next`, but only answers (`permission_respond`, `question_reply`, `question_reject`): the oldest pending one,
   * ahead of any queued prompt. The running turn that waits on an ask takes its answer with it.
   */
  readonly nextAnswer: (lease: Lease) => Effect.Effect<Option.Option<RunnableCommand>, StaleOwner>
  /**
   * `next`, and for a prompt its opening events (`turnOpeningEvents`: `command.retried` when an attempt was
   * abandoned, then `session.status` running) appended in the same fenced write: what an owner does first with every
   * command, in one round trip.
   */
  readonly start: (lease: Lease) => Effect.Effect<Option.Option<RunnableCommand>, StaleOwner>
  /**
   * Records `message` (already redacted) as `last_error` on the leased session's oldest `pending` command, leaving
   * its status and attempt count alone: why the owner cannot start it yet (e.g. its checkpoint restore failed).
   * Returns the command's id, `None` when nothing is pending. Fails with `StaleOwner` when the lease is not live.
   */
  readonly noteError: (lease: Lease, message: string) => Effect.Effect<Option.Option<string>, StaleOwner>
  /** Counts pending commands up to `limit` (never a full scan) and the age of the oldest one. */
  /** With `orgId`: that org's pending commands only (an org operator's view); without, every org's. */
  readonly backlog: (limit: number, orgId?: string | undefined) => Effect.Effect<QueueBacklog>
}>()("cowork/CommandQueue") {
  static readonly layerMemory: Layer.Layer<CommandQueue, never, MemoryDatabase> = Layer.effect(
    CommandQueue,
    Effect.map(Effect.service(MemoryDatabase), makeCommandQueueMemory)
  )
}
