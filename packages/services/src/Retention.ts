import { Config, Context, Effect, Layer } from "effect"
import { MemoryDatabase } from "./MemoryDatabase.ts"
import { makeRetentionMemory } from "./RetentionMemory.ts"

/**
 * What a retention pass removes, by age on the store's clock; an absent age keeps that kind of row forever.
 * Open commands (pending, running), failed and dead ones, a workflow run's still-open command, and events the
 * session's projection does not hold yet are never removed.
 */
export interface RetentionPolicy {
  /** Acked and cancelled commands created longer ago than this are deleted. */
  readonly commandsOlderThanMs?: number | undefined
  /**
   * Each session's events created longer ago than this are pruned as `EventLog.prune` does: a prefix of the log,
   * never past the projected sequence (the projection is the snapshot); a client resuming behind the new earliest
   * sequence gets `snapshot.required`.
   */
  readonly eventsOlderThanMs?: number | undefined
  /** Only this org's sessions (every org's when absent). */
  readonly orgId?: string | undefined
}

/** One batch's work. */
export interface RetentionBatch {
  /** Sessions examined. */
  readonly sessions: number
  readonly commandsDeleted: number
  readonly eventsDeleted: number
  /** The last session examined, the next batch's `after`; null when the pass reached the last session. */
  readonly next: string | null
}

/** A whole pass. */
interface RetentionTotals {
  readonly batches: number
  readonly sessions: number
  readonly commandsDeleted: number
  readonly eventsDeleted: number
}

/**
 * Retention of the command and event history, session by session in id order, in bounded batches: each batch is one
 * short transaction over at most `limit` sessions, so a pass never holds locks on more than one batch and costs
 * what it walks (a session's events up to the first one it keeps, its commands).
 */
export class Retention extends Context.Service<Retention, {
  /** The sessions after `after` (null: from the first), at most `limit`, in id order. */
  readonly batch: (policy: RetentionPolicy, after: string | null, limit: number) => Effect.Effect<RetentionBatch>
}>()("cowork/Retention") {
  static readonly layerMemory: Layer.Layer<Retention, never, MemoryDatabase> = Layer.effect(
    Retention,
    Effect.map(Effect.service(MemoryDatabase), makeRetentionMemory)
  )
}

/** Every session once: batches of `batchSize` until the last session. */
export const retentionPass = (policy: RetentionPolicy, batchSize: number) =>
  Effect.gen(function*() {
    const retention = yield* Retention
    let after: string | null = null
    const totals = { batches: 0, sessions: 0, commandsDeleted: 0, eventsDeleted: 0 }
    do {
      const batch: RetentionBatch = yield* retention.batch(policy, after, batchSize)
      totals.batches++
      totals.sessions += batch.sessions
      totals.commandsDeleted += batch.commandsDeleted
      totals.eventsDeleted += batch.eventsDeleted
      after = batch.next
    } while (after !== null)
    return totals as RetentionTotals
  })

export const DAY_MS = 24 * 3_600_000

/**
 * The operator's retention, from the environment: `OPEN_COWORK_CLOUD_RETENTION_COMMAND_DAYS` (acked and cancelled
 * commands) and `OPEN_COWORK_CLOUD_RETENTION_EVENT_DAYS` (events); 0 or unset keeps that history forever.
 */
export const retentionDaysConfig = Config.all({
  commandDays: Config.Int("OPEN_COWORK_CLOUD_RETENTION_COMMAND_DAYS").pipe(Config.withDefault(0)),
  eventDays: Config.Int("OPEN_COWORK_CLOUD_RETENTION_EVENT_DAYS").pipe(Config.withDefault(0))
})

/** A policy from ages in days; 0 (or less) keeps that history forever. */
export const retentionPolicy = (commandDays: number, eventDays: number, orgId?: string): RetentionPolicy => ({
  commandsOlderThanMs: commandDays > 0 ? commandDays * DAY_MS : undefined,
  eventsOlderThanMs: eventDays > 0 ? eventDays * DAY_MS : undefined,
  orgId
})
