import { observedHeartbeat, WorkerRefused } from "@cowork/domain"
import { type HeartbeatInput, Heartbeats, presentedCredential } from "@cowork/services"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"

const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  /**
   * A registered worker's row shows its lifecycle status (the worker's own status while it is `active`), and the beat
   * is written only with a valid credential, in the same statement that records the credential's last use.
   */
  const beat = Effect.fn("Heartbeats.beat")(function*(input: HeartbeatInput) {
    const { credentialId, secretHash } = presentedCredential(input.credential)
    const rows = yield* sql.unsafe<{ written: number; lifecycle: string | null }>(
      `WITH registered AS (SELECT w.id, w.pool_id, w.status FROM cloud_workers w WHERE w.id = $1),
      cred AS (
        SELECT c.id, c.last_used_at FROM cloud_worker_credentials c JOIN registered w ON c.worker_id = w.id
        WHERE c.id = $10 AND c.secret_hash = $11 AND c.revoked_at IS NULL AND c.expires_at > clock_timestamp()
          AND w.status NOT IN ('retired', 'revoked')
      ),
      allowed AS (
        SELECT (SELECT pool_id FROM registered) AS pool_id, (SELECT status FROM registered) AS lifecycle
        WHERE ($10::text IS NULL AND NOT EXISTS (SELECT 1 FROM registered)) OR EXISTS (SELECT 1 FROM cred)
      ),
      used AS (UPDATE cloud_worker_credentials c SET last_used_at = now() FROM cred WHERE c.id = cred.id),
      audited AS (
        INSERT INTO cloud_audit_events (org_id, actor, action, target, details)
        SELECT NULL, 'worker:' || $1, 'worker_credential.last_used', cred.id,
          jsonb_build_object('workerId', $1, 'previousUseAt', cred.last_used_at)
        FROM cred WHERE cred.last_used_at IS NULL OR cred.last_used_at < now() - interval '1 hour'
      ),
      upsert AS (
        INSERT INTO cloud_worker_heartbeats
          (worker_id, role, pool_id, status, version, region, capabilities, current_load, active_work_ids, started_at, last_seen_at,
           interval_ms)
        SELECT $1, $2, coalesce(allowed.pool_id, $3),
          CASE WHEN allowed.lifecycle IS NULL OR allowed.lifecycle = 'active' THEN $4 ELSE allowed.lifecycle END,
          $5, $6, $7::text[], $8, $9::text[], now(), now(), $12::int
        FROM allowed
        ON CONFLICT (worker_id) DO UPDATE SET
          role = EXCLUDED.role, pool_id = EXCLUDED.pool_id,
          status = EXCLUDED.status,
          version = EXCLUDED.version, region = EXCLUDED.region, capabilities = EXCLUDED.capabilities,
          current_load = EXCLUDED.current_load, active_work_ids = EXCLUDED.active_work_ids, last_seen_at = now(),
          interval_ms = EXCLUDED.interval_ms
        RETURNING 1
      )
      SELECT (SELECT count(*) FROM upsert)::int AS written, (SELECT status FROM registered) AS lifecycle`,
      [
        input.workerId,
        input.role,
        input.poolId,
        input.status,
        input.version,
        input.region,
        [...input.capabilities],
        input.currentLoad,
        [...input.activeWorkIds],
        credentialId,
        secretHash,
        input.intervalMs === undefined ? null : Math.round(input.intervalMs)
      ]
    ).pipe(Effect.orDie)
    const row = rows[0]!
    if (Number(row.written) > 0) return
    const reason = row.lifecycle === null
      ? "a credential was presented but the worker is not registered"
      : row.lifecycle === "retired" || row.lifecycle === "revoked"
      ? `the worker is ${row.lifecycle}`
      : input.credential === undefined
      ? "the worker is registered: a credential is required"
      : "the credential is invalid, expired or revoked"
    return yield* new WorkerRefused({ workerId: input.workerId, reason })
  })

  const list = Effect.fn("Heartbeats.list")(function*(freshWithinMs: number, orgId?: string | undefined) {
    const rows = yield* sql.unsafe<{
      worker_id: string
      role: "worker" | "scheduler"
      pool_id: string | null
      status: string
      version: string
      region: string | null
      capabilities: Array<string>
      current_load: number
      active_work_ids: Array<string>
      last_seen_at: Date
      age_ms: number
      interval_ms: number | null
    }>(
      `SELECT h.worker_id, h.role, h.pool_id, h.status, h.version, h.region, h.capabilities, h.current_load, h.last_seen_at,
        h.interval_ms,
        CASE WHEN $1::text IS NULL THEN h.active_work_ids ELSE ARRAY(
          SELECT a.id FROM unnest(h.active_work_ids) WITH ORDINALITY AS a(id, n)
          JOIN cloud_sessions s ON s.id = a.id WHERE s.org_id = $1::text ORDER BY a.n
        ) END AS active_work_ids,
        (extract(epoch FROM clock_timestamp() - h.last_seen_at) * 1000)::float8 AS age_ms
      FROM cloud_worker_heartbeats h LEFT JOIN cloud_worker_pools p ON p.id = h.pool_id
      WHERE $1::text IS NULL OR p.org_id IS NULL OR p.org_id = $1::text
      ORDER BY h.worker_id`,
      [orgId ?? null]
    ).pipe(Effect.orDie)
    return rows.map((row) => observedHeartbeat({
      workerId: row.worker_id,
      role: row.role,
      poolId: row.pool_id,
      status: row.status,
      version: row.version,
      region: row.region,
      capabilities: row.capabilities,
      currentLoad: Number(row.current_load),
      activeWorkIds: row.active_work_ids,
      lastSeenAt: new Date(row.last_seen_at).toISOString(),
      ageMs: Number(row.age_ms),
      intervalMs: row.interval_ms
    }, freshWithinMs))
  })

  const prune = Effect.fn("Heartbeats.prune")(function*(retentionMs: number) {
    const rows = yield* sql.unsafe<{ worker_id: string }>(
      `DELETE FROM cloud_worker_heartbeats
       WHERE last_seen_at < clock_timestamp() - make_interval(secs => $1::float8 / 1000) RETURNING worker_id`,
      [retentionMs]
    ).pipe(Effect.orDie)
    return rows.length
  })

  return Heartbeats.of({ beat, list, prune })
})

export const layer = Layer.effect(Heartbeats, make)
