import { Retention, type RetentionPolicy } from "@cowork/services"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"

/** Arbitrary constant: the transaction-level advisory lock that serializes retention batches of concurrent passes. */
const RETENTION_LOCK_KEY = 7_316_540_243

/**
 * One batch in one statement: the batch's sessions in id order (`$1` after, `$2` org, `$3` limit); their acked and
 * cancelled commands created before the cutoff (`$4` ms, null: keep), unless a queued or running workflow run still
 * waits on one; per session the first event to keep — the first created at or after the cutoff (`$5` ms, null: keep),
 * found walking the log from its earliest retained sequence, and never past the projected sequence + 1 — then the
 * events before it deleted and `earliest_sequence` raised to it, as `EventLog.prune` does.
 */
const BATCH = `WITH batch AS (
    SELECT s.id FROM cloud_sessions s
    WHERE ($1::text IS NULL OR s.id > $1::text) AND ($2::text IS NULL OR s.org_id = $2::text)
    ORDER BY s.id LIMIT $3
  ),
  commands AS (
    DELETE FROM cloud_session_commands c USING batch
    WHERE $4::float8 IS NOT NULL AND c.session_id = batch.id AND c.status IN ('acked', 'cancelled')
      AND c.created_at < now() - $4::float8 * interval '1 millisecond'
      AND NOT EXISTS (SELECT 1 FROM cloud_workflow_runs r WHERE r.command_id = c.id AND r.status IN ('queued', 'running'))
    RETURNING 1
  ),
  cut AS (
    SELECT p.session_id, LEAST(p.projected_sequence + 1, coalesce(
      (SELECT e.sequence FROM cloud_session_events e
        WHERE e.session_id = p.session_id AND e.sequence >= p.earliest_sequence
          AND e.created_at >= now() - $5::float8 * interval '1 millisecond'
        ORDER BY e.sequence LIMIT 1),
      p.last_sequence + 1)) AS before
    FROM cloud_session_projections p JOIN batch ON batch.id = p.session_id
    WHERE $5::float8 IS NOT NULL
  ),
  events AS (
    DELETE FROM cloud_session_events e USING cut
    WHERE e.session_id = cut.session_id AND e.sequence < cut.before
    RETURNING 1
  ),
  bounds AS (
    UPDATE cloud_session_projections p SET earliest_sequence = cut.before
    FROM cut WHERE p.session_id = cut.session_id AND cut.before > p.earliest_sequence
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM batch)::int AS sessions, (SELECT max(id) FROM batch) AS last,
    (SELECT count(*) FROM commands)::int AS commands, (SELECT count(*) FROM events)::int AS events,
    (SELECT count(*) FROM bounds)::int AS pruned`

const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const batch = Effect.fn("Retention.batch")(function*(policy: RetentionPolicy, after: string | null, limit: number) {
    if (limit <= 0) return { sessions: 0, commandsDeleted: 0, eventsDeleted: 0, next: null }
    const rows = yield* sql.withTransaction(Effect.andThen(
      sql.unsafe(`SELECT pg_advisory_xact_lock(${RETENTION_LOCK_KEY})`),
      sql.unsafe<{ sessions: number; last: string | null; commands: number; events: number }>(BATCH, [
        after,
        policy.orgId ?? null,
        limit,
        policy.commandsOlderThanMs ?? null,
        policy.eventsOlderThanMs ?? null
      ])
    )).pipe(Effect.orDie)
    const row = rows[0]!
    const sessions = Number(row.sessions)
    return {
      sessions,
      commandsDeleted: Number(row.commands),
      eventsDeleted: Number(row.events),
      next: sessions === limit ? row.last : null
    }
  })

  return Retention.of({ batch })
})

export const layer = Layer.effect(Retention, make)
