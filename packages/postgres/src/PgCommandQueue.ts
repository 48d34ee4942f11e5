import { ANSWER_COMMAND_KINDS, type CommandKind, type CommandPayload, type Lease, newEventId, type RunnableCommand, StaleOwner } from "@cowork/domain"
import { CommandQueue } from "@cowork/services"
import { Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import { nextSessionStatusSql } from "./AppendEvents.ts"
import { EVENTS_CHANNEL } from "./Channels.ts"
import { liveLease } from "./LeaseFence.ts"

/**
 * The fenced prefix of every mailbox statement (`$1` session, `$2` epoch, `$3` worker): `live` is the lease row,
 * held FOR SHARE, only while it is this owner's live lease; `oldest` is the session's oldest pending command, locked.
 * `oldest` names the session by its key (`$1`), not through a join on `live`: the only index that serves it is the
 * per-session pending one (migration 40, 23), whatever the statistics say about the history.
 */
const oldestPendingUnderLiveLease = (kinds: string) => `WITH live AS (
        SELECT l.session_id FROM cloud_worker_leases l
        WHERE ${liveLease("$1", "$2", "$3")}
        FOR SHARE OF l
      ),
      oldest AS (
        SELECT c.id, c.position FROM cloud_session_commands c
        WHERE c.session_id = $1 AND c.status = 'pending'${kinds} AND EXISTS (SELECT 1 FROM live)
        ORDER BY c.position LIMIT 1
        FOR UPDATE OF c
      )`

/**
 * The oldest pending command (locked by `oldest`) reached again by the session's pending index, whose size is the
 * session's mailbox — not by the primary key, whose depth grows with the whole history (issue 15 target 3). A
 * position is one command's (a sequence).
 */
const OLDEST_AGAIN = `c.session_id = $1 AND c.status = 'pending' AND c.position = oldest.position`
const OLDEST_PENDING_UNDER_LIVE_LEASE = oldestPendingUnderLiveLease("")
const OLDEST_ANSWER_UNDER_LIVE_LEASE = oldestPendingUnderLiveLease(
  ` AND c.kind IN (${ANSWER_COMMAND_KINDS.map((kind) => `'${kind}'`).join(", ")})`
)

/**
 * `next` plus, for a prompt, the opening events of its turn (domain `turnOpeningEvents`, written here in SQL:
 * `command.retried` when attempts were abandoned, then `session.status` running) appended as an owner append does:
 * contiguous sequences on the projection row, the projection delta (status, the abandoned attempt's messages
 * dropped), NOTIFY. `$4` / `$5` are the two event ids.
 */
const takeOldest = (prefix: string) => `${prefix},
      started AS (
        UPDATE cloud_session_commands c SET status = 'running', claimed_epoch = $2, claimed_by = $3, started_at = now()
        FROM oldest WHERE ${OLDEST_AGAIN}
        RETURNING c.id, c.kind, c.payload, c.attempt_count, c.trace_parent
      )
      SELECT true AS live, started.id, started.kind, started.payload, started.attempt_count, started.trace_parent
      FROM live LEFT JOIN started ON true`
const NEXT = takeOldest(OLDEST_PENDING_UNDER_LIVE_LEASE)
const NEXT_ANSWER = takeOldest(OLDEST_ANSWER_UNDER_LIVE_LEASE)

const START = `${OLDEST_PENDING_UNDER_LIVE_LEASE},
      started AS (
        UPDATE cloud_session_commands c SET status = 'running', claimed_epoch = $2, claimed_by = $3, started_at = now()
        FROM oldest WHERE ${OLDEST_AGAIN}
        RETURNING c.id, c.kind, c.payload, c.attempt_count, c.trace_parent
      ),
      opening AS (
        SELECT o.idx, o.event_id, o.type, o.payload, started.id AS command_id, (started.attempt_count + 1)::int AS attempt
        FROM started, LATERAL (VALUES
          (0, $4::text, 'command.retried', jsonb_build_object(
            'commandId', started.id, 'abandonedAttempt', started.attempt_count, 'attempt', started.attempt_count + 1)),
          (1, $5::text, 'session.status', jsonb_build_object('status', 'running', 'commandId', started.id))
        ) AS o(idx, event_id, type, payload)
        WHERE started.kind = 'prompt' AND (o.idx = 1 OR started.attempt_count > 0)
      ),
      seq AS (
        UPDATE cloud_session_projections p SET
          last_sequence = p.last_sequence + (SELECT count(*) FROM opening),
          projected_sequence = p.last_sequence + (SELECT count(*) FROM opening),
          status = ${nextSessionStatusSql("p.status", "'running'")},
          updated_at = now()
        FROM started WHERE started.kind = 'prompt' AND p.session_id = $1
        RETURNING p.last_sequence, p.org_id
      ),
      ins AS (
        INSERT INTO cloud_session_events (session_id, sequence, event_id, type, payload, command_id, attempt)
        SELECT $1, seq.last_sequence - 1 + o.idx, o.event_id, o.type, o.payload, o.command_id, o.attempt
        FROM seq, opening o
      ),
      dropped AS (
        DELETE FROM cloud_session_projection_messages m USING started, seq
        WHERE started.attempt_count > 0 AND m.session_id = $1 AND m.command_id = started.id AND m.attempt = started.attempt_count
      )
      SELECT true AS live, started.id, started.kind, started.payload, started.attempt_count, started.trace_parent,
        (SELECT pg_notify('${EVENTS_CHANNEL}', seq.org_id || ' ' || $1 || ' ' || seq.last_sequence::text) IS NULL FROM seq) AS notified
      FROM live LEFT JOIN started ON true`

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const take = (lease: Lease, statement: string, extra: ReadonlyArray<unknown> = []) => Effect.gen(function*() {
    const rows = yield* sql.unsafe<{
      live: boolean
      id: string | null
      kind: CommandKind | null
      payload: CommandPayload | null
      attempt_count: number | null
      trace_parent: string | null
    }>(
      statement,
      [lease.sessionId, lease.epoch, lease.workerId, ...extra]
    ).pipe(Effect.orDie)
    const row = rows[0]
    if (row === undefined) {
      return yield* new StaleOwner({ sessionId: lease.sessionId, epoch: lease.epoch, operation: "next" })
    }
    if (row.id === null || row.kind === null) return Option.none<RunnableCommand>()
    const abandonedAttempts = Number(row.attempt_count ?? 0)
    return Option.some<RunnableCommand>({
      id: row.id,
      sessionId: lease.sessionId,
      kind: row.kind,
      payload: row.payload ?? {},
      attempt: abandonedAttempts + 1,
      abandonedAttempts,
      traceParent: row.trace_parent ?? undefined
    })
  })
  // Once or more per command: spans without a captured call site (an `Error` per call; always these lines).
  const NO_STACK_TRACE = { captureStackTrace: false } as const
  const next = (lease: Lease) => take(lease, NEXT).pipe(Effect.withSpan("CommandQueue.next", undefined, NO_STACK_TRACE))
  const nextAnswer = (lease: Lease) =>
    take(lease, NEXT_ANSWER).pipe(Effect.withSpan("CommandQueue.nextAnswer", undefined, NO_STACK_TRACE))
  const start = (lease: Lease) =>
    take(lease, START, [newEventId(), newEventId()]).pipe(Effect.withSpan("CommandQueue.start", undefined, NO_STACK_TRACE))

  const noteError = Effect.fn("CommandQueue.noteError")(function*(lease: Lease, message: string) {
    const rows = yield* sql.unsafe<{ live: boolean; id: string | null }>(
      `${OLDEST_PENDING_UNDER_LIVE_LEASE},
      noted AS (
        UPDATE cloud_session_commands c SET last_error = $4
        FROM oldest WHERE c.id = oldest.id AND c.status = 'pending'
        RETURNING c.id
      )
      SELECT true AS live, noted.id FROM live LEFT JOIN noted ON true`,
      [lease.sessionId, lease.epoch, lease.workerId, message]
    ).pipe(Effect.orDie)
    const row = rows[0]
    if (row === undefined) {
      return yield* new StaleOwner({ sessionId: lease.sessionId, epoch: lease.epoch, operation: "note_error" })
    }
    return Option.fromNullishOr(row.id)
  })

  /**
   * Both reads walk the partial `pending` index (its predicate needs the `position > 0` they state, true of every
   * row: migration 23); the count stops at `limit` rows.
   */
  const backlog = Effect.fn("CommandQueue.backlog")(function*(limit: number, orgId?: string | undefined) {
    const rows = yield* sql.unsafe<{ depth: number; oldest_age_ms: number | null }>(
      `SELECT
        (SELECT count(*) FROM (SELECT 1 FROM cloud_session_commands
          WHERE status = 'pending' AND position > 0 AND ($2::text IS NULL OR org_id = $2::text) LIMIT $1) bounded)::int AS depth,
        (SELECT (extract(epoch FROM clock_timestamp() - c.created_at) * 1000)::float8
          FROM cloud_session_commands c WHERE c.status = 'pending' AND c.position > 0 AND ($2::text IS NULL OR c.org_id = $2::text)
          ORDER BY c.position LIMIT 1) AS oldest_age_ms`,
      [limit, orgId ?? null]
    ).pipe(Effect.orDie)
    const depth = Number(rows[0]?.depth ?? 0)
    return { depthEstimate: depth, capped: depth >= limit, oldestAgeMs: Math.max(0, Number(rows[0]?.oldest_age_ms ?? 0)) }
  })

  return CommandQueue.of({ next, nextAnswer, start, noteError, backlog })
})

export const layer = Layer.effect(CommandQueue, make)
