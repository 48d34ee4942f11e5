import type { WorkerHeartbeat } from "@cowork/domain"
import { type HeartbeatInput, Heartbeats } from "@cowork/services"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  /** An operator's `paused` / `revoked` survives the worker's own beats; the claim SQL honours it. */
  const beat = Effect.fn("Heartbeats.beat")(function*(input: HeartbeatInput) {
    yield* sql.unsafe(
      `INSERT INTO cloud_worker_heartbeats
        (worker_id, role, pool_id, status, version, region, capabilities, current_load, active_work_ids, started_at, last_seen_at)
      VALUES ($1, $2, $3, $4, $5, $6, $7::text[], $8, $9::text[], now(), now())
      ON CONFLICT (worker_id) DO UPDATE SET
        role = EXCLUDED.role, pool_id = EXCLUDED.pool_id,
        status = CASE WHEN cloud_worker_heartbeats.status IN ('paused', 'revoked')
          THEN cloud_worker_heartbeats.status ELSE EXCLUDED.status END,
        version = EXCLUDED.version, region = EXCLUDED.region, capabilities = EXCLUDED.capabilities,
        current_load = EXCLUDED.current_load, active_work_ids = EXCLUDED.active_work_ids, last_seen_at = now()`,
      [
        input.workerId,
        input.role,
        input.poolId,
        input.status,
        input.version,
        input.region,
        [...input.capabilities],
        input.currentLoad,
        [...input.activeWorkIds]
      ]
    ).pipe(Effect.orDie)
  })

  const list = Effect.fn("Heartbeats.list")(function*(freshWithinMs: number) {
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
    }>(
      `SELECT worker_id, role, pool_id, status, version, region, capabilities, current_load, active_work_ids, last_seen_at,
        (extract(epoch FROM clock_timestamp() - last_seen_at) * 1000)::float8 AS age_ms
      FROM cloud_worker_heartbeats ORDER BY worker_id`
    ).pipe(Effect.orDie)
    return rows.map((row): WorkerHeartbeat => ({
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
      fresh: Number(row.age_ms) < freshWithinMs
    }))
  })

  return Heartbeats.of({ beat, list })
})

export const layer = Layer.effect(Heartbeats, make)
