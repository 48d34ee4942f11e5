import { Conflict, type EventDraft, NotFound, projectEvents, type SessionEventType, type SessionStatus } from "@cowork/domain"
import { type ProjectionStatus, Projections } from "@cowork/services/Projections"
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

interface ReplayedMessage {
  readonly message_id: string
  readonly role: "user" | "assistant"
  readonly text: string
  readonly command_id: string | null
  readonly attempt: number | null
  readonly sequence: number
}

/** The status rule `appendEvents` applies per batch, applied per event. */
const nextStatus = (current: SessionStatus, proposed: SessionStatus | undefined): SessionStatus => {
  if (proposed === undefined || current === "aborted") return current
  if (proposed === "queued" && current !== "idle") return current
  return proposed
}

/**
 * Replays a whole log through `projectEvents`: the status, and the message rows left once later writes overwrote
 * a message id and retries dropped the abandoned attempts' output.
 */
export const replay = (events: ReadonlyArray<EventRow>) => {
  let status: SessionStatus = "idle"
  const messages = new Map<string, ReplayedMessage>()
  const dropped = new Set<string>()
  for (const event of events) {
    const draft: EventDraft = {
      type: event.type as SessionEventType,
      payload: event.payload ?? {},
      commandId: event.command_id ?? undefined,
      attempt: event.attempt ?? undefined
    }
    const delta = projectEvents([draft])
    status = nextStatus(status, delta.status)
    for (const drop of delta.dropAttempts) dropped.add(`${drop.commandId} ${drop.attempt}`)
    for (const message of delta.messages) {
      messages.set(message.messageId, {
        message_id: message.messageId,
        role: message.role,
        text: message.text,
        command_id: message.commandId,
        attempt: message.attempt,
        sequence: Number(event.sequence)
      })
    }
  }
  const kept = [...messages.values()].filter((m) => m.attempt === null || !dropped.has(`${m.command_id} ${m.attempt}`))
  return { status, messages: kept.sort((a, b) => a.sequence - b.sequence) }
}

const sameRows = (stored: ReadonlyArray<ReplayedMessage>, expected: ReadonlyArray<ReplayedMessage>) =>
  stored.length === expected.length &&
  stored.every((row, i) => {
    const other = expected[i]!
    return row.message_id === other.message_id && row.role === other.role && row.text === other.text &&
      row.command_id === other.command_id && (row.attempt ?? null) === (other.attempt ?? null) && row.sequence === other.sequence
  })

export const make = Effect.gen(function*() {
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
      const stored = yield* sql.unsafe<ReplayedMessage>(
        `SELECT message_id, role, text, command_id, attempt, sequence::float8 AS sequence
         FROM cloud_session_projection_messages WHERE session_id = $1 ORDER BY sequence, message_id`,
        [sessionId]
      )
      const events = yield* sql.unsafe<EventRow>(
        `SELECT sequence, type, payload, command_id, attempt FROM cloud_session_events WHERE session_id = $1 ORDER BY sequence`,
        [sessionId]
      )
      const expected = replay(events)
      const lastSequence = Number(projection.last_sequence)
      const projectedSequence = Number(projection.projected_sequence)
      const earliestSequence = Number(projection.earliest_sequence)
      const storedRows = stored.map((row) => ({ ...row, sequence: Number(row.sequence), attempt: row.attempt === null ? null : Number(row.attempt) }))
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
          sameRows(storedRows, expected.messages)
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
          [sessionId, JSON.stringify(expected.messages)]
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
    `SELECT max(last_sequence - projected_sequence)::float8 AS lag FROM cloud_session_projections
     WHERE projected_sequence < last_sequence`
  ).pipe(Effect.orDie, Effect.map((rows) => Math.max(0, Number(rows[0]?.lag ?? 0))), Effect.withSpan("Projections.maxLag"))

  return Projections.of({ status, repair, maxLag })
})

export const layer = Layer.effect(Projections, make)
