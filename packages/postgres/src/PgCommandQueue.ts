import { StaleOwner, type CommandKind, type Lease, type RunnableCommand } from "@cowork/domain"
import { CommandQueue } from "@cowork/services"
import { Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const next = Effect.fn("CommandQueue.next")(function*(lease: Lease) {
    const rows = yield* sql.unsafe<{
      live: boolean
      id: string | null
      kind: CommandKind | null
      payload: { text?: string } | null
      attempt_count: number | null
    }>(
      `WITH live AS (
        SELECT l.session_id FROM cloud_worker_leases l
        WHERE l.session_id = $1 AND l.epoch = $2 AND l.worker_id = $3 AND l.expires_at > clock_timestamp()
        FOR SHARE OF l
      ),
      oldest AS (
        SELECT c.id FROM cloud_session_commands c, live
        WHERE c.session_id = live.session_id AND c.status = 'pending'
        ORDER BY c.position LIMIT 1
        FOR UPDATE OF c
      ),
      started AS (
        UPDATE cloud_session_commands c SET status = 'running', claimed_epoch = $2, claimed_by = $3, started_at = now()
        FROM oldest WHERE c.id = oldest.id
        RETURNING c.id, c.kind, c.payload, c.attempt_count
      )
      SELECT true AS live, started.id, started.kind, started.payload, started.attempt_count
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
      abandonedAttempts
    })
  })

  const status = Effect.fn("CommandQueue.status")(function*(commandId: string) {
    const rows = yield* sql.unsafe<{ status: string; attempt_count: number }>(
      `SELECT status, attempt_count FROM cloud_session_commands WHERE id = $1`,
      [commandId]
    ).pipe(Effect.orDie)
    const row = rows[0]
    return row === undefined
      ? Option.none()
      : Option.some({ status: row.status, attemptCount: Number(row.attempt_count) })
  })

  return CommandQueue.of({ next, status })
})

export const layer = Layer.effect(CommandQueue, make)
