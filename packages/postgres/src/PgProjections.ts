import { Conflict, NotFound, type ProjectedMessage, type SessionStatus } from "@cowork/domain"
import { type ProjectionStatus, Projections, replayLog, sameAsks, sameMessages } from "@cowork/services"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"

interface ProjectionRow {
  readonly status: SessionStatus
  readonly last_sequence: bigint | number
  readonly projected_sequence: bigint | number
  readonly earliest_sequence: bigint | number
}

interface EventRow {
  readonly sequence: bigint | number
  readonly type: string
  readonly payload: Record<string, unknown>
  readonly command_id: string | null
  readonly attempt: number | null
}

interface MessageRow {
  readonly message_id: string
  readonly role: "user" | "assistant"
  readonly text: string
  readonly command_id: string | null
  readonly attempt: number | null
  readonly sequence: number
}

const messageOf = (row: MessageRow): ProjectedMessage => ({
  messageId: row.message_id,
  role: row.role,
  text: row.text,
  commandId: row.command_id,
  attempt: row.attempt === null ? null : Number(row.attempt),
  sequence: Number(row.sequence)
})

const rowOf = (message: ProjectedMessage): MessageRow => ({
  message_id: message.messageId,
  role: message.role,
  text: message.text,
  command_id: message.commandId,
  attempt: message.attempt,
  sequence: message.sequence
})

const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  /** Reads the projection, its rows and the full log; with `lock`, holds the projection row until commit. */
  const inspect = (sessionId: string, lock: boolean) =>
    Effect.gen(function*() {
      const projections = yield* sql.unsafe<ProjectionRow>(
        `SELECT status, last_sequence, projected_sequence, earliest_sequence FROM cloud_session_projections
         WHERE session_id = $1${lock ? " FOR UPDATE" : ""}`,
        [sessionId]
      )
      const projection = projections[0]
      if (projection === undefined) return yield* new NotFound({ message: `session ${sessionId} not found` })
      const stored = yield* sql.unsafe<MessageRow>(
        `SELECT message_id, role, text, command_id, attempt, sequence::float8 AS sequence
         FROM cloud_session_projection_messages WHERE session_id = $1 ORDER BY sequence, message_id`,
        [sessionId]
      )
      const asks = yield* sql.unsafe<{ kind: "permission" | "question"; ask_id: string; command_id: string | null; sequence: number }>(
        `SELECT kind, ask_id, command_id, sequence::float8 AS sequence FROM cloud_session_pending_asks WHERE session_id = $1`,
        [sessionId]
      )
      const events = yield* sql.unsafe<EventRow>(
        `SELECT sequence, type, payload, command_id, attempt FROM cloud_session_events WHERE session_id = $1 ORDER BY sequence`,
        [sessionId]
      )
      const expected = replayLog(events.map((event) => ({
        sequence: Number(event.sequence),
        type: event.type,
        payload: event.payload,
        commandId: event.command_id,
        attempt: event.attempt === null ? null : Number(event.attempt)
      })))
      const lastSequence = Number(projection.last_sequence)
      const projectedSequence = Number(projection.projected_sequence)
      const earliestSequence = Number(projection.earliest_sequence)
      const storedRows = stored.map(messageOf)
      const status: ProjectionStatus = {
        sessionId,
        status: projection.status,
        lastSequence,
        projectedSequence,
        lagEvents: lastSequence - projectedSequence,
        earliestSequence,
        messageRows: stored.length,
        expectedMessageRows: expected.messages.length,
        expectedStatus: expected.status,
        consistent: lastSequence === projectedSequence && projection.status === expected.status &&
          sameMessages(storedRows, expected.messages) &&
          sameAsks(asks.map((a) => ({ ask: a.kind, askId: a.ask_id, commandId: a.command_id, payload: {}, sequence: Number(a.sequence) })), expected.asks)
      }
      return { status, expected, maxSequence: events.length === 0 ? 0 : Number(events[events.length - 1]!.sequence) }
    })

  const status = Effect.fn("Projections.status")(function*(sessionId: string) {
    return (yield* inspect(sessionId, false).pipe(Effect.catchTag("SqlError", Effect.die))).status
  })

  const repair = Effect.fn("Projections.repair")(function*(sessionId: string) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      const { status: before, expected, maxSequence } = yield* inspect(sessionId, true)
      if (before.consistent) return { before, after: before, changed: false }
      if (before.earliestSequence > 1) {
        return yield* new Conflict({
          message: `session ${sessionId}: events before sequence ${before.earliestSequence} were pruned; the log cannot rebuild the projection`
        })
      }
      yield* sql.unsafe(`DELETE FROM cloud_session_projection_messages WHERE session_id = $1`, [sessionId])
      if (expected.messages.length > 0) {
        yield* sql.unsafe(
          `INSERT INTO cloud_session_projection_messages (session_id, message_id, role, text, command_id, attempt, sequence)
           SELECT $1, x.message_id, x.role, x.text, x.command_id, x.attempt, x.sequence
           FROM jsonb_to_recordset($2::jsonb) AS x(message_id text, role text, text text, command_id text, attempt int, sequence bigint)`,
          [sessionId, JSON.stringify(expected.messages.map(rowOf))]
        )
      }
      yield* sql.unsafe(`DELETE FROM cloud_session_pending_asks WHERE session_id = $1`, [sessionId])
      if (expected.asks.length > 0) {
        yield* sql.unsafe(
          `INSERT INTO cloud_session_pending_asks (session_id, kind, ask_id, command_id, payload, sequence)
           SELECT $1, x.kind, x.ask_id, x.command_id, x.payload, x.sequence
           FROM jsonb_to_recordset($2::jsonb) AS x(kind text, ask_id text, command_id text, payload jsonb, sequence bigint)`,
          [sessionId, JSON.stringify(expected.asks.map((a) => ({ kind: a.ask, ask_id: a.askId, command_id: a.commandId, payload: a.payload, sequence: a.sequence })))]
        )
      }
      // last_sequence allocates sequences: it never moves back, or the next append would reuse one.
      yield* sql.unsafe(
        `UPDATE cloud_session_projections SET status = $2,
           last_sequence = GREATEST(last_sequence, $3::bigint), projected_sequence = GREATEST(last_sequence, $3::bigint),
           updated_at = now()
         WHERE session_id = $1`,
        [sessionId, expected.status, maxSequence]
      )
      const { status: after } = yield* inspect(sessionId, false)
      yield* Effect.logWarning("projection rebuilt from the event log").pipe(
        Effect.annotateLogs({ session_id: sessionId, lag_before: before.lagEvents, rows_before: before.messageRows, rows_after: after.messageRows })
      )
      return { before, after, changed: true }
    })).pipe(Effect.catchTag("SqlError", Effect.die))
  })

  const maxLag = sql.unsafe<{ lag: number | null }>(
    // Stated as the BRIN index's expression (migration 27), so the page ranges with no lag are skipped.
    `SELECT max(last_sequence - projected_sequence)::float8 AS lag FROM cloud_session_projections
     WHERE last_sequence - projected_sequence > 0`
  ).pipe(Effect.orDie, Effect.map((rows) => Math.max(0, Number(rows[0]?.lag ?? 0))), Effect.withSpan("Projections.maxLag"))

  return Projections.of({ status, repair, maxLag })
})

export const layer = Layer.effect(Projections, make)
