import { StaleOwner, type EventDraft, type Lease, type SessionEvent } from "@cowork/domain"
import { type CommandCompletion, EventLog, staleAppendOperation } from "@cowork/services"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { appendEvents, appendEventsStatement } from "./AppendEvents.ts"

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const append = Effect.fnUntraced(function*(
    lease: Lease,
    drafts: ReadonlyArray<EventDraft>,
    completion?: CommandCompletion
  ) {
    const last = yield* appendEvents(lease.sessionId, drafts, {
      workerId: lease.workerId,
      epoch: lease.epoch,
      completion
    }).pipe(Effect.orDie, Effect.provideService(SqlClient.SqlClient, sql))
    if (last === undefined) {
      return yield* new StaleOwner({
        sessionId: lease.sessionId,
        epoch: lease.epoch,
        operation: staleAppendOperation(completion)
      })
    }
    return last
  }, Effect.withSpan("EventLog.append"))

  const close = Effect.fnUntraced(function*(lease: Lease, drafts: ReadonlyArray<EventDraft>, completion: CommandCompletion) {
    const statement = appendEventsStatement(lease.sessionId, drafts, {
      workerId: lease.workerId,
      epoch: lease.epoch,
      completion,
      release: true
    })
    const rows = yield* sql.unsafe<{ last_sequence: number; released: boolean }>(statement.sql, statement.params).pipe(Effect.orDie)
    const row = rows[0]
    if (row === undefined) {
      return yield* new StaleOwner({ sessionId: lease.sessionId, epoch: lease.epoch, operation: staleAppendOperation(completion) })
    }
    return { lastSequence: Number(row.last_sequence), released: row.released === true }
  }, Effect.withSpan("EventLog.close"))

  const read = Effect.fnUntraced(function*(sessionId: string, after: number, limit: number) {
    const rows = yield* sql.unsafe<{ sequence: bigint; type: string; event_id: string; payload: unknown; created_at: Date }>(
      `SELECT sequence, type, event_id, payload, created_at FROM cloud_session_events
       WHERE session_id = $1 AND sequence > $2 ORDER BY sequence LIMIT $3`,
      [sessionId, after, limit]
    ).pipe(Effect.orDie)
    return rows.map((row): SessionEvent => ({
      sequence: Number(row.sequence),
      type: row.type,
      eventId: row.event_id,
      payload: row.payload,
      createdAt: new Date(row.created_at).toISOString()
    }))
  }, Effect.withSpan("EventLog.read"))

  const bounds = Effect.fnUntraced(function*(sessionId: string) {
    const rows = yield* sql.unsafe<{ earliest_sequence: bigint; last_sequence: bigint }>(
      `SELECT earliest_sequence, last_sequence FROM cloud_session_projections WHERE session_id = $1`,
      [sessionId]
    ).pipe(Effect.orDie)
    const row = rows[0]
    return row === undefined
      ? { earliestSequence: 1, latestSequence: 0 }
      : { earliestSequence: Number(row.earliest_sequence), latestSequence: Number(row.last_sequence) }
  }, Effect.withSpan("EventLog.bounds"))

  const latestSequences = Effect.fn("EventLog.latestSequences")(function*(sessionIds: ReadonlyArray<string>) {
    if (sessionIds.length === 0) return new Map<string, number>()
    const rows = yield* sql.unsafe<{ session_id: string; last_sequence: bigint }>(
      `SELECT session_id, last_sequence FROM cloud_session_projections WHERE session_id = ANY($1::text[])`,
      [sessionIds]
    ).pipe(Effect.orDie)
    return new Map(rows.map((row) => [row.session_id, Number(row.last_sequence)]))
  })

  const changedSince = Effect.fn("EventLog.changedSince")(function*(orgIds: ReadonlyArray<string>, sinceMs: number, limit: number) {
    if (orgIds.length === 0) return []
    const rows = yield* sql.unsafe<{ org_id: string; session_id: string; last_sequence: bigint }>(
      `SELECT org_id, session_id, last_sequence FROM cloud_session_projections
       WHERE org_id = ANY($1::text[]) AND updated_at >= to_timestamp($2::float8 / 1000)
       ORDER BY updated_at LIMIT $3`,
      [orgIds, sinceMs, limit]
    ).pipe(Effect.orDie)
    return rows.map((row) => ({ orgId: row.org_id, sessionId: row.session_id, lastSequence: Number(row.last_sequence) }))
  })

  const prune = Effect.fn("EventLog.prune")(function*(sessionId: string, before: number) {
    yield* sql.unsafe(
      `WITH pruned AS (DELETE FROM cloud_session_events WHERE session_id = $1 AND sequence < $2)
      UPDATE cloud_session_projections p
      SET earliest_sequence = GREATEST(p.earliest_sequence, LEAST($2::bigint, p.last_sequence + 1))
      WHERE p.session_id = $1`,
      [sessionId, before]
    ).pipe(Effect.orDie)
  })

  return EventLog.of({ append, close, read, bounds, latestSequences, changedSince, prune })
})

export const layer = Layer.effect(EventLog, make)
