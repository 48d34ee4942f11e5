import {
  NotFound,
  isHeartbeatFresh,
  type PoolMode,
  type PoolStatus,
  type RegisteredWorker,
  type WorkerCredentialView,
  type WorkerLifecycle,
  type WorkerPool
} from "@cowork/domain"
import type { Actor } from "@cowork/services"
import type { SqlClient } from "effect/sql"

/** The worker registry's rows, how they read as domain values, and the SQL fragments its statements share. */

export interface PoolRow {
  id: string
  name: string
  mode: PoolMode
  org_id: string | null
  max_workers: number
  max_concurrent_work: number
  region: string | null
  capabilities: Array<string>
  status: PoolStatus
  created_at: Date
  updated_at: Date
}

export interface WorkerRow {
  id: string
  pool_id: string
  name: string
  status: WorkerLifecycle
  created_at: Date
  updated_at: Date
  last_seen_at: Date | null
  heartbeat_status: string | null
  age_ms: number | null
  interval_ms: number | null
}

export interface CredentialRow {
  id: string
  worker_id: string
  scopes: Array<string>
  created_at: Date
  expires_at: Date
  revoked_at: Date | null
  last_used_at: Date | null
  replaces_id: string | null
  replaced_by_id: string | null
}

const iso = (date: Date | null) => (date === null ? null : new Date(date).toISOString())

export const poolOf = (row: PoolRow): WorkerPool => ({
  id: row.id,
  name: row.name,
  mode: row.mode,
  orgId: row.org_id,
  maxWorkers: Number(row.max_workers),
  maxConcurrentWork: Number(row.max_concurrent_work),
  region: row.region,
  capabilities: row.capabilities,
  status: row.status,
  createdAt: iso(row.created_at)!,
  updatedAt: iso(row.updated_at)!
})

export const workerOf = (freshWithinMs: number) => (row: WorkerRow): RegisteredWorker => ({
  id: row.id,
  poolId: row.pool_id,
  name: row.name,
  status: row.status,
  health: row.age_ms === null
    ? "unknown"
    : isHeartbeatFresh({ ageMs: Number(row.age_ms), status: row.heartbeat_status ?? "", intervalMs: row.interval_ms }, freshWithinMs)
    ? "healthy"
    : "unhealthy",
  lastHeartbeatAt: iso(row.last_seen_at),
  createdAt: iso(row.created_at)!,
  updatedAt: iso(row.updated_at)!
})

export const credentialOf = (row: CredentialRow): WorkerCredentialView => ({
  id: row.id,
  workerId: row.worker_id,
  scopes: row.scopes,
  createdAt: iso(row.created_at)!,
  expiresAt: iso(row.expires_at)!,
  revokedAt: iso(row.revoked_at),
  lastUsedAt: iso(row.last_used_at),
  replacesId: row.replaces_id,
  replacedById: row.replaced_by_id
})

export const WORKER_COLUMNS = `w.id, w.pool_id, w.name, w.status, w.created_at, w.updated_at, h.last_seen_at, h.status AS heartbeat_status,
  (extract(epoch FROM clock_timestamp() - h.last_seen_at) * 1000)::float8 AS age_ms, h.interval_ms`
export const WORKER_FROM = `cloud_workers w LEFT JOIN cloud_worker_heartbeats h ON h.worker_id = w.id`

/**
 * The pool `p` is within the scope given as parameter `param`: NULL reaches every pool (platform operator, CLI),
 * an org id only that org's pools.
 */
export const inScope = (pool: string, param: string) => `(${param}::text IS NULL OR ${pool}.org_id = ${param}::text)`
export const CREDENTIAL_COLUMNS = `id, worker_id, scopes, created_at, expires_at, revoked_at, last_used_at, replaces_id, replaced_by_id`

/** An audit row for a registry change, in the same transaction. */
export const registryAudit = (sql: SqlClient.SqlClient) => (actor: Actor, action: string, target: string, details: Record<string, unknown>) =>
  sql.unsafe(
    `INSERT INTO cloud_audit_events (org_id, actor, action, target, details) VALUES ($1, $2, $3, $4, $5::jsonb)`,
    [actor.orgId, actor.actor, action, target, JSON.stringify(details)]
  )

export const notFound = (what: string, id: string) => new NotFound({ message: `no such ${what}: ${id}` })
