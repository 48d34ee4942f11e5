import { ANSWER_COMMAND_KINDS, type CommandKind, type CommandPayload, type Lease, type RunnableCommand, StaleOwner } from "@cowork/domain"
import { CommandQueue } from "@cowork/services"
import { Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import { liveLease } from "./LeaseFence.ts"

/**
 * The fenced prefix of every mailbox statement (`$1` session, `$2` epoch, `$3` worker): `live` is the lease row,
 * held FOR SHARE, only while it is this owner's live lease; `oldest` is the session's oldest pending command, locked.
 */
const oldestPendingUnderLiveLease = (kinds: string) => `WITH live AS (
        SELECT l.session_id FROM cloud_worker_leases l
        WHERE ${liveLease("$1", "$2", "$3")}
        FOR SHARE OF l
      ),
      oldest AS (
        SELECT c.id FROM cloud_session_commands c, live
        WHERE c.session_id = live.session_id AND c.status = 'pending'${kinds}
        ORDER BY c.position LIMIT 1
        FOR UPDATE OF c
      )`
const OLDEST_PENDING_UNDER_LIVE_LEASE = oldestPendingUnderLiveLease("")
const OLDEST_ANSWER_UNDER_LIVE_LEASE = oldestPendingUnderLiveLease(
  ` AND c.kind IN (${ANSWER_COMMAND_KINDS.map((kind) => `'${kind}'`).join(", ")})`
)

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const start = (prefix: string, lease: Lease) => Effect.gen(function*() {
    const rows = yield* sql.unsafe<{
      live: boolean
      id: string | null
      kind: CommandKind | null
      payload: CommandPayload | null
      attempt_count: number | null
      trace_parent: string | null
    }>(
      `${prefix},
      started AS (
        UPDATE cloud_session_commands c SET status = 'running', claimed_epoch = $2, claimed_by = $3, started_at = now()
        FROM oldest WHERE c.id = oldest.id
        RETURNING c.id, c.kind, c.payload, c.attempt_count, c.trace_parent
      )
      SELECT true AS live, started.id, started.kind, started.payload, started.attempt_count, started.trace_parent
      FROM live LEFT JOIN started ON true`,
      [lease.sessionId, lease.epoch, lease.workerId]
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
  const next = Effect.fn("CommandQueue.next")(function*(lease: Lease) {
    return yield* start(OLDEST_PENDING_UNDER_LIVE_LEASE, lease)
  })
  const nextAnswer = Effect.fn("CommandQueue.nextAnswer")(function*(lease: Lease) {
    return yield* start(OLDEST_ANSWER_UNDER_LIVE_LEASE, lease)
  })

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

  /** Both reads walk the partial `pending` index; the count stops at `limit` rows. */
  const backlog = Effect.fn("CommandQueue.backlog")(function*(limit: number, orgId?: string | undefined) {
    const rows = yield* sql.unsafe<{ depth: number; oldest_age_ms: number | null }>(
      `SELECT
        (SELECT count(*) FROM (SELECT 1 FROM cloud_session_commands
          WHERE status = 'pending' AND ($2::text IS NULL OR org_id = $2::text) LIMIT $1) bounded)::int AS depth,
        (SELECT (extract(epoch FROM clock_timestamp() - c.created_at) * 1000)::float8
          FROM cloud_session_commands c WHERE c.status = 'pending' AND ($2::text IS NULL OR c.org_id = $2::text)
          ORDER BY c.position LIMIT 1) AS oldest_age_ms`,
      [limit, orgId ?? null]
    ).pipe(Effect.orDie)
    const depth = Number(rows[0]?.depth ?? 0)
    return { depthEstimate: depth, capped: depth >= limit, oldestAgeMs: Math.max(0, Number(rows[0]?.oldest_age_ms ?? 0)) }
  })

  return CommandQueue.of({ next, nextAnswer, noteError, backlog })
})

export const layer = Layer.effect(CommandQueue, make)
