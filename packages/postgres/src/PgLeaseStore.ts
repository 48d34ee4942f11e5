import { type DeadCommand, deadLetteredEvents, type Lease, StaleOwner, type StaleOwnerOperation } from "@cowork/domain"
import { LeaseStore, presentedCredential, type ReapOptions } from "@cowork/services"
import { Effect, Layer, type Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { appendEvents } from "./AppendEvents.ts"
import { COMMANDS_CHANNEL } from "./Channels.ts"
import { ALLOWANCE } from "./ClaimAllowance.ts"
import { liveLease, mayRenew } from "./LeaseFence.ts"

/**
 * Commands still `running` on the sessions in `owned` go back to `pending` for another attempt, or become
 * `dead` once `$maxAttempts` attempts were abandoned. Shared by claim (sessions taken over) and the reaper. By key
 * (`= ANY` of the sessions): joined to `owned`, whose size the planner cannot know, it hashed every open command.
 */
const recoverRunning = (owned: string, maxAttemptsParam: string) => `
  UPDATE cloud_session_commands c SET
    attempt_count = c.attempt_count + 1,
    status = CASE WHEN c.attempt_count + 1 >= ${maxAttemptsParam} THEN 'dead' ELSE 'pending' END,
    completed_at = CASE WHEN c.attempt_count + 1 >= ${maxAttemptsParam} THEN now() ELSE NULL END,
    last_error = 'attempt ' || (c.attempt_count + 1) || ' abandoned by worker ' || coalesce(c.claimed_by, '?'),
    claimed_epoch = NULL,
    claimed_by = NULL
  WHERE c.session_id = ANY (ARRAY(SELECT session_id FROM ${owned})) AND c.status = 'running'
  RETURNING c.session_id, c.status, c.id, c.kind, c.attempt_count, c.last_error`

/** The commands of `recovered` that went dead, per session, as `DeadCommand` JSON (null when none). */
const deadCommands = (sessionColumn: string) => `(SELECT json_agg(json_build_object(
    'commandId', r.id, 'kind', r.kind, 'attempts', r.attempt_count, 'reason', r.last_error))
  FROM recovered r WHERE r.session_id = ${sessionColumn} AND r.status = 'dead')`

/** The claimer's tenant filter on a command `c` (a self-hosted pool serves only its org; `tenant` is from ALLOWANCE). */
const OF_TENANT = `((SELECT org_id FROM tenant) IS NULL OR c.org_id = (SELECT org_id FROM tenant))`

/**
 * The sessions a claim may take, driven from the open (pending or running) commands into the leases by key: the
 * distinct sessions of the open-commands partial index, in its order (it streams: the walk stops at the allowance),
 * each joined to its own lease row, locked `SKIP LOCKED` only while free or expired (the condition is re-checked on
 * the row's latest version). The work is the open backlog walked up to the first claimable sessions, never the
 * history nor every session's lease. A running command under an expired lease makes its session claimable (the
 * takeover: `recovered` requeues or kills the command).
 */
const CANDIDATES = `open AS (
        SELECT DISTINCT c.session_id FROM cloud_session_commands c
        WHERE c.status IN ('pending', 'running') AND ${OF_TENANT}
      ),
      candidates AS (
        SELECT free.session_id FROM open
        CROSS JOIN LATERAL (
          SELECT l.session_id FROM cloud_worker_leases l
          WHERE l.session_id = open.session_id AND l.expires_at <= clock_timestamp()
          FOR UPDATE OF l SKIP LOCKED
        ) free
        WHERE NOT EXISTS (SELECT 1 FROM cloud_worker_heartbeats h WHERE h.worker_id = $1 AND h.status = 'draining')
        LIMIT (SELECT n FROM allowance)
      ),`

/** The live-lease condition every owner write is fenced by (`$1` session, `$2` epoch, `$3` worker). */
const LIVE = liveLease("$1", "$2", "$3")

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const claim = Effect.fnUntraced(function*(
    workerId: string,
    limit: number,
    ttlMs: number,
    maxAttempts: number,
    credential?: Redacted.Redacted<string>
  ) {
    if (limit <= 0) return []
    const { credentialId, secretHash } = presentedCredential(credential)
    // Locking the claimer's pool row first serializes the pool's claimers, so the claim statement (a fresh
    // snapshot under READ COMMITTED) counts every lease the previous claimer committed: max_concurrent_work holds
    // under concurrency. Unmanaged workers have no pool row and lock nothing.
    const lockPool = sql.unsafe(
      `SELECT p.id FROM cloud_worker_pools p JOIN cloud_workers w ON w.pool_id = p.id WHERE w.id = $1 FOR UPDATE OF p`,
      [workerId]
    )
    // The claimed leases are updated by key (`= ANY` of the candidates' array): joined to the CTE, whose size the
    // planner cannot know, the update hashed a sequential scan of every lease row (it grew with the sessions).
    const claimStatement = sql.unsafe<{
      session_id: string
      epoch: number
      checkpoint_version: number
      org_id: string
      dead: ReadonlyArray<DeadCommand> | null
    }>(
      `WITH ${ALLOWANCE}
      ${CANDIDATES}
      claimed AS (
        UPDATE cloud_worker_leases l SET
          worker_id = $1, epoch = l.epoch + 1,
          expires_at = now() + make_interval(secs => $3::float8 / 1000),
          claimed_at = now(), renewed_at = now()
        WHERE l.session_id = ANY (ARRAY(SELECT session_id FROM candidates))
        RETURNING l.session_id, l.epoch, l.checkpoint_version
      ),
      recovered AS (${recoverRunning("claimed", "$4")})
      SELECT claimed.session_id, claimed.epoch::float8 AS epoch, claimed.checkpoint_version::float8 AS checkpoint_version,
        (SELECT s.org_id FROM cloud_sessions s WHERE s.id = claimed.session_id) AS org_id,
        ${deadCommands("claimed.session_id")} AS dead
      FROM claimed`,
      [workerId, limit, ttlMs, maxAttempts, credentialId, secretHash]
    )
    // A command the takeover killed settles its session: the new owner appends the terminal event, fenced by the
    // lease it just took.
    const claimAndSettle = Effect.tap(claimStatement, (rows) =>
      Effect.forEach(rows, (row) =>
        row.dead === null
          ? Effect.void
          : Effect.asVoid(appendEvents(row.session_id, row.dead.flatMap(deadLetteredEvents), { workerId, epoch: Number(row.epoch) })),
        { discard: true }).pipe(Effect.provideService(SqlClient.SqlClient, sql)))
    // Without a credential the worker is either unmanaged (no pool limits) or refused by the allowance (claims
    // nothing): no pool row to serialize on, so the claim is one statement (two when a command died), not a
    // transaction.
    const rows = yield* (credential === undefined
      ? claimAndSettle
      : sql.withTransaction(Effect.andThen(lockPool, claimAndSettle))).pipe(Effect.orDie)
    return rows.map((row): Lease => ({
      sessionId: row.session_id,
      workerId,
      epoch: Number(row.epoch),
      checkpointVersion: Number(row.checkpoint_version),
      orgId: row.org_id
    }))
  }, Effect.withSpan("LeaseStore.claim"))

  const fenced = (lease: Lease, operation: StaleOwnerOperation, statement: string, extra: ReadonlyArray<unknown> = []) =>
    sql.unsafe<{ ok: boolean }>(statement, [lease.sessionId, lease.epoch, lease.workerId, ...extra]).pipe(
      Effect.orDie,
      Effect.flatMap((rows) =>
        rows.length > 0
          ? Effect.succeed(rows[0]!)
          : Effect.fail(new StaleOwner({ sessionId: lease.sessionId, epoch: lease.epoch, operation }))
      )
    )

  const renew = Effect.fnUntraced(function*(lease: Lease, ttlMs: number) {
    yield* fenced(lease, "renew", `UPDATE cloud_worker_leases l
      SET expires_at = now() + make_interval(secs => $4::float8 / 1000), renewed_at = now()
      WHERE ${LIVE} AND ${mayRenew("$3")} RETURNING true AS ok`, [ttlMs])
  }, Effect.withSpan("LeaseStore.renew"))

  const releaseIfIdle = Effect.fnUntraced(function*(lease: Lease) {
    const row = yield* fenced(lease, "release", `WITH live AS (
        SELECT l.session_id FROM cloud_worker_leases l WHERE ${LIVE} FOR UPDATE OF l
      ),
      busy AS (
        SELECT EXISTS (SELECT 1 FROM cloud_session_commands c WHERE c.session_id = $1 AND c.status = 'pending') AS pending
      ),
      released AS (
        UPDATE cloud_worker_leases l SET worker_id = NULL, expires_at = '-infinity'
        FROM live, busy WHERE l.session_id = live.session_id AND NOT busy.pending
        RETURNING l.session_id
      )
      SELECT EXISTS (SELECT 1 FROM released) AS ok FROM live`)
    return row.ok
  }, Effect.withSpan("LeaseStore.releaseIfIdle"))

  const expire = Effect.fn("LeaseStore.expire")(function*(lease: Lease) {
    yield* fenced(lease, "expire", `UPDATE cloud_worker_leases l SET expires_at = now()
      WHERE ${LIVE} RETURNING true AS ok`)
  })

  /**
   * One bounded batch, in one transaction with the terminal events of the commands it killed (appended like any
   * unowned append: the session's sequence allocation serializes it with every other writer).
   */
  const reapBatch = (limit: number, maxAttempts: number) =>
    sql.unsafe<{
      reaped: number
      requeued: number
      dead: number
      notified: number
      dead_commands: ReadonlyArray<DeadCommand & { readonly sessionId: string }> | null
      next_expiry_ms: number | null
    }>(
      `WITH expired AS (
        SELECT l.session_id FROM cloud_worker_leases l
        WHERE l.worker_id IS NOT NULL AND l.expires_at <= clock_timestamp()
        ORDER BY l.expires_at
        LIMIT $1
        FOR UPDATE OF l SKIP LOCKED
      ),
      reaped AS (
        UPDATE cloud_worker_leases l SET worker_id = NULL, epoch = l.epoch + 1, expires_at = '-infinity'
        FROM expired WHERE l.session_id = expired.session_id
        RETURNING l.session_id
      ),
      recovered AS (${recoverRunning("reaped", "$2")})
      SELECT
        (SELECT count(*) FROM reaped)::int AS reaped,
        (SELECT count(*) FROM recovered WHERE status = 'pending')::int AS requeued,
        (SELECT count(*) FROM recovered WHERE status = 'dead')::int AS dead,
        (SELECT count(pg_notify('${COMMANDS_CHANNEL}', 'prompt ' || s.session_id))
          FROM (SELECT DISTINCT session_id FROM recovered WHERE status = 'pending') s)::int AS notified,
        (SELECT json_agg(json_build_object(
            'sessionId', r.session_id, 'commandId', r.id, 'kind', r.kind, 'attempts', r.attempt_count, 'reason', r.last_error))
          FROM recovered r WHERE r.status = 'dead') AS dead_commands,
        (extract(epoch FROM (SELECT min(expires_at) FROM cloud_worker_leases
           WHERE worker_id IS NOT NULL AND expires_at > clock_timestamp()) - clock_timestamp()) * 1000)::float8 AS next_expiry_ms`,
      [limit, maxAttempts]
    ).pipe(
      Effect.map((rows) => rows[0]!),
      Effect.tap((batch) =>
        Effect.forEach(batch.dead_commands ?? [], (dead) => appendEvents(dead.sessionId, deadLetteredEvents(dead), undefined), {
          discard: true
        }).pipe(Effect.provideService(SqlClient.SqlClient, sql))),
      sql.withTransaction,
      Effect.orDie
    )

  const reapExpired = Effect.fn("LeaseStore.reapExpired")(function*(options: ReapOptions) {
    let reaped = 0
    let requeued = 0
    let dead = 0
    let nextExpiryInMs: number | null = null
    while (reaped < options.drainCap) {
      const limit = Math.min(options.batchSize, options.drainCap - reaped)
      const batch = yield* reapBatch(limit, options.maxAttempts)
      reaped += Number(batch.reaped)
      requeued += Number(batch.requeued)
      dead += Number(batch.dead)
      nextExpiryInMs = batch.next_expiry_ms === null ? null : Number(batch.next_expiry_ms)
      if (Number(batch.reaped) < limit) return { reaped, capHit: false, requeued, dead, nextExpiryInMs }
    }
    return { reaped, capHit: true, requeued, dead, nextExpiryInMs }
  })

  return LeaseStore.of({ claim, renew, releaseIfIdle, expire, reapExpired })
})

export const layer = Layer.effect(LeaseStore, make)
