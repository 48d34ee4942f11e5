import {
  Conflict,
  IllegalTransition,
  isHeartbeatFresh,
  isTerminal,
  NotFound,
  type PoolMode,
  type PoolStatus,
  type RegisteredWorker,
  transition,
  WORKER_CREDENTIAL_SCOPES,
  type WorkerAction,
  type WorkerCredentialView,
  type WorkerLifecycle,
  type WorkerPool,
  workerTransitions
} from "@cowork/domain"
import {
  type Actor,
  clampCredentialTtl,
  type RegistryScope,
  newWorkerSecret,
  randomId,
  WorkerRegistry
} from "@cowork/services"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"

interface PoolRow {
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

interface WorkerRow {
  id: string
  pool_id: string
  name: string
  status: WorkerLifecycle
  created_at: Date
  updated_at: Date
  last_seen_at: Date | null
  heartbeat_status: string | null
  age_ms: number | null
}

interface CredentialRow {
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

const poolOf = (row: PoolRow): WorkerPool => ({
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

const workerOf = (freshWithinMs: number) => (row: WorkerRow): RegisteredWorker => ({
  id: row.id,
  poolId: row.pool_id,
  name: row.name,
  status: row.status,
  health: row.age_ms === null
    ? "unknown"
    : isHeartbeatFresh({ ageMs: Number(row.age_ms), status: row.heartbeat_status ?? "" }, freshWithinMs)
    ? "healthy"
    : "unhealthy",
  lastHeartbeatAt: iso(row.last_seen_at),
  createdAt: iso(row.created_at)!,
  updatedAt: iso(row.updated_at)!
})

const credentialOf = (row: CredentialRow): WorkerCredentialView => ({
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

const WORKER_COLUMNS = `w.id, w.pool_id, w.name, w.status, w.created_at, w.updated_at, h.last_seen_at, h.status AS heartbeat_status,
  (extract(epoch FROM clock_timestamp() - h.last_seen_at) * 1000)::float8 AS age_ms`
const WORKER_FROM = `cloud_workers w LEFT JOIN cloud_worker_heartbeats h ON h.worker_id = w.id`

/**
 * The pool `p` is within the scope given as parameter `param`: NULL reaches every pool (platform operator, CLI),
 * an org id only that org's pools.
 */
const inScope = (pool: string, param: string) => `(${param}::text IS NULL OR ${pool}.org_id = ${param}::text)`
const CREDENTIAL_COLUMNS = `id, worker_id, scopes, created_at, expires_at, revoked_at, last_used_at, replaces_id, replaced_by_id`

/** Registry over `cloud_worker_pools`, `cloud_workers`, `cloud_worker_credentials`; audit rows in `cloud_audit_events`. */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const audit = (actor: Actor, action: string, target: string, details: Record<string, unknown>) =>
    sql.unsafe(
      `INSERT INTO cloud_audit_events (org_id, actor, action, target, details) VALUES ($1, $2, $3, $4, $5::jsonb)`,
      [actor.orgId, actor.actor, action, target, JSON.stringify(details)]
    )

  const notFound = (what: string, id: string) => new NotFound({ message: `no such ${what}: ${id}` })

  const createPool = Effect.fn("WorkerRegistry.createPool")(function*(input: Parameters<WorkerRegistry["Service"]["createPool"]>[0], actor: Actor) {
    const orgId = actor.orgId ?? input.orgId ?? null
    return yield* sql.withTransaction(Effect.gen(function*() {
      if (orgId !== null && (yield* sql.unsafe(`SELECT 1 FROM cloud_orgs WHERE id = $1`, [orgId])).length === 0) {
        return yield* notFound("org", orgId)
      }
      const rows = yield* sql.unsafe<PoolRow>(
        `INSERT INTO cloud_worker_pools (id, name, mode, max_workers, max_concurrent_work, region, capabilities, org_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7::text[], $8) RETURNING *`,
        [
          `pool_${randomId(16)}`,
          input.name,
          input.mode,
          input.maxWorkers,
          input.maxConcurrentWork,
          input.region ?? null,
          [...(input.capabilities ?? [])],
          orgId
        ]
      )
      const pool = poolOf(rows[0]!)
      yield* audit(actor, "worker_pool.created", pool.id, {
        mode: pool.mode,
        orgId: pool.orgId,
        maxWorkers: pool.maxWorkers,
        maxConcurrentWork: pool.maxConcurrentWork
      })
      return pool
    }))
  }, Effect.catchTag("SqlError", Effect.die))

  const listPools = Effect.fn("WorkerRegistry.listPools")(function*(scope: RegistryScope) {
    const rows = yield* sql.unsafe<PoolRow>(
      `SELECT * FROM cloud_worker_pools p WHERE ${inScope("p", "$1")} ORDER BY created_at, id`,
      [scope.orgId]
    )
    return rows.map(poolOf)
  }, Effect.orDie)

  const updatePool = Effect.fn("WorkerRegistry.updatePool")(function*(poolId: string, patch: Parameters<WorkerRegistry["Service"]["updatePool"]>[1], actor: Actor) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      const rows = yield* sql.unsafe<PoolRow>(
        `UPDATE cloud_worker_pools SET
           name = coalesce($2, name), mode = coalesce($3, mode), max_workers = coalesce($4, max_workers),
           max_concurrent_work = coalesce($5, max_concurrent_work),
           region = CASE WHEN $6::boolean THEN $7 ELSE region END,
           capabilities = coalesce($8::text[], capabilities), status = coalesce($9, status), updated_at = now()
         WHERE id = $1 AND ${inScope("cloud_worker_pools", "$10")} RETURNING *`,
        [
          poolId,
          patch.name ?? null,
          patch.mode ?? null,
          patch.maxWorkers ?? null,
          patch.maxConcurrentWork ?? null,
          patch.region !== undefined,
          patch.region ?? null,
          patch.capabilities === undefined ? null : [...patch.capabilities],
          patch.status ?? null,
          actor.orgId
        ]
      )
      const row = rows[0]
      if (row === undefined) return yield* notFound("pool", poolId)
      yield* audit(actor, "worker_pool.updated", poolId, { changes: patch })
      return poolOf(row)
    }))
  }, Effect.catchTag("SqlError", Effect.die))

  const registerWorker = Effect.fn("WorkerRegistry.registerWorker")(function*(
    input: { readonly poolId: string; readonly name?: string | undefined; readonly id?: string | undefined },
    actor: Actor
  ) {
    const id = input.id ?? `wrk_${randomId(16)}`
    return yield* sql.withTransaction(Effect.gen(function*() {
      const pool = yield* sql.unsafe<{ id: string }>(
        `SELECT p.id FROM cloud_worker_pools p WHERE p.id = $1 AND ${inScope("p", "$2")}`,
        [input.poolId, actor.orgId]
      )
      if (pool.length === 0) return yield* notFound("pool", input.poolId)
      const inserted = yield* sql.unsafe<{ id: string }>(
        `INSERT INTO cloud_workers (id, pool_id, name) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING RETURNING id`,
        [id, input.poolId, input.name ?? id]
      )
      if (inserted.length === 0) return yield* new Conflict({ message: `worker ${id} is already registered` })
      yield* audit(actor, "worker.registered", id, { poolId: input.poolId, status: "pending" })
      const rows = yield* sql.unsafe<WorkerRow>(`SELECT ${WORKER_COLUMNS} FROM ${WORKER_FROM} WHERE w.id = $1`, [id])
      return workerOf(0)(rows[0]!)
    }))
  }, Effect.catchTag("SqlError", Effect.die))

  const listWorkers = Effect.fn("WorkerRegistry.listWorkers")(function*(scope: RegistryScope, freshWithinMs: number) {
    const rows = yield* sql.unsafe<WorkerRow>(
      `SELECT ${WORKER_COLUMNS} FROM ${WORKER_FROM} JOIN cloud_worker_pools p ON p.id = w.pool_id
       WHERE ${inScope("p", "$1")} ORDER BY w.created_at, w.id`,
      [scope.orgId]
    )
    return rows.map(workerOf(freshWithinMs))
  }, Effect.orDie)

  const transitionWorker = Effect.fn("WorkerRegistry.transition")(function*(
    workerId: string,
    action: WorkerAction,
    actor: Actor,
    freshWithinMs: number
  ) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      const current = yield* sql.unsafe<{ status: WorkerLifecycle; pool_id: string }>(
        `SELECT w.status, w.pool_id FROM cloud_workers w JOIN cloud_worker_pools p ON p.id = w.pool_id
         WHERE w.id = $1 AND ${inScope("p", "$2")} FOR UPDATE OF w`,
        [workerId, actor.orgId]
      )
      const from = current[0]
      if (from === undefined) return yield* notFound("worker", workerId)
      const to = transition(from.status, action)
      if (to === undefined) {
        return yield* new IllegalTransition({ workerId, action, from: from.status, to: workerTransitions[action].to })
      }
      if (to === "active") {
        // The pool row lock serializes activations, so two cannot both take the last slot.
        const capacity = yield* sql.unsafe<{ max_workers: number; busy: number }>(
          `SELECT p.max_workers,
             (SELECT count(*) FROM cloud_workers w WHERE w.pool_id = p.id AND w.id <> $2 AND w.status IN ('active', 'draining'))::int AS busy
           FROM cloud_worker_pools p WHERE p.id = $1 FOR UPDATE OF p`,
          [from.pool_id, workerId]
        )
        const pool = capacity[0]!
        if (Number(pool.busy) >= Number(pool.max_workers)) {
          return yield* new Conflict({
            message: `pool ${from.pool_id} already has maxWorkers=${pool.max_workers} active or draining workers`
          })
        }
      }
      yield* sql.unsafe(`UPDATE cloud_workers SET status = $2, updated_at = now() WHERE id = $1`, [workerId, to])
      yield* sql.unsafe(
        `UPDATE cloud_worker_heartbeats SET status = $2 WHERE worker_id = $1 AND $2 <> 'active'`,
        [workerId, to]
      )
      yield* audit(actor, `worker.${to}`, workerId, { action, from: from.status, to })
      if (to === "retired" || to === "revoked") {
        const revoked = yield* sql.unsafe<{ id: string }>(
          `UPDATE cloud_worker_credentials SET revoked_at = now() WHERE worker_id = $1 AND revoked_at IS NULL RETURNING id`,
          [workerId]
        )
        for (const credential of revoked) {
          yield* audit(actor, "worker_credential.revoked", credential.id, { workerId, reason: `worker ${to}` })
        }
      }
      if (to === "revoked") {
        yield* sql.unsafe(
          `UPDATE cloud_worker_leases SET expires_at = now() WHERE worker_id = $1 AND expires_at > now()`,
          [workerId]
        )
      }
      const rows = yield* sql.unsafe<WorkerRow>(`SELECT ${WORKER_COLUMNS} FROM ${WORKER_FROM} WHERE w.id = $1`, [workerId])
      return workerOf(freshWithinMs)(rows[0]!)
    }))
  }, Effect.catchTag("SqlError", Effect.die))

  const workerStatus = (workerId: string, scope: RegistryScope) =>
    Effect.gen(function*() {
      const rows = yield* sql.unsafe<{ status: WorkerLifecycle }>(
        `SELECT w.status FROM cloud_workers w JOIN cloud_worker_pools p ON p.id = w.pool_id
         WHERE w.id = $1 AND ${inScope("p", "$2")} FOR UPDATE OF w`,
        [workerId, scope.orgId]
      )
      const row = rows[0]
      if (row === undefined) return yield* notFound("worker", workerId)
      return row.status
    })

  const insertCredential = (workerId: string, expiresInSeconds: number | undefined, replacesId: string | null) =>
    Effect.gen(function*() {
      const fresh = newWorkerSecret()
      const rows = yield* sql.unsafe<CredentialRow>(
        `INSERT INTO cloud_worker_credentials (id, worker_id, secret_hash, scopes, expires_at, replaces_id)
         VALUES ($1, $2, $3, $4::text[], now() + make_interval(secs => $5::float8), $6)
         RETURNING ${CREDENTIAL_COLUMNS}`,
        [fresh.credentialId, workerId, fresh.secretHash, [...WORKER_CREDENTIAL_SCOPES], clampCredentialTtl(expiresInSeconds), replacesId]
      )
      return { credential: credentialOf(rows[0]!), plaintext: fresh.plaintext }
    })

  const refuseTerminal = (workerId: string, status: WorkerLifecycle) =>
    isTerminal(status)
      ? Effect.fail(new Conflict({ message: `worker ${workerId} is ${status}: terminal workers get no new credentials` }))
      : Effect.void

  const listCredentials = Effect.fn("WorkerRegistry.listCredentials")(function*(workerId: string, scope: RegistryScope) {
    const exists = yield* sql.unsafe<{ id: string }>(
      `SELECT w.id FROM cloud_workers w JOIN cloud_worker_pools p ON p.id = w.pool_id WHERE w.id = $1 AND ${inScope("p", "$2")}`,
      [workerId, scope.orgId]
    )
    if (exists.length === 0) return yield* notFound("worker", workerId)
    const rows = yield* sql.unsafe<CredentialRow>(
      `SELECT ${CREDENTIAL_COLUMNS} FROM cloud_worker_credentials WHERE worker_id = $1 ORDER BY created_at, id`,
      [workerId]
    )
    return rows.map(credentialOf)
  }, Effect.catchTag("SqlError", Effect.die))

  const issueCredential = Effect.fn("WorkerRegistry.issueCredential")(function*(
    workerId: string,
    options: { readonly expiresInSeconds?: number | undefined },
    actor: Actor
  ) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* refuseTerminal(workerId, yield* workerStatus(workerId, actor))
      const issued = yield* insertCredential(workerId, options.expiresInSeconds, null)
      yield* audit(actor, "worker_credential.issued", issued.credential.id, {
        workerId,
        scopes: issued.credential.scopes,
        expiresAt: issued.credential.expiresAt
      })
      return issued
    }))
  }, Effect.catchTag("SqlError", Effect.die))

  const rotateCredential = Effect.fn("WorkerRegistry.rotateCredential")(function*(
    workerId: string,
    credentialId: string,
    options: { readonly expiresInSeconds?: number | undefined; readonly graceSeconds?: number | undefined },
    actor: Actor
  ) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* refuseTerminal(workerId, yield* workerStatus(workerId, actor))
      const old = yield* sql.unsafe<{ revoked_at: Date | null }>(
        `SELECT revoked_at FROM cloud_worker_credentials WHERE id = $1 AND worker_id = $2 FOR UPDATE`,
        [credentialId, workerId]
      )
      if (old[0] === undefined) return yield* notFound("credential", credentialId)
      if (old[0].revoked_at !== null) return yield* new Conflict({ message: `credential ${credentialId} is revoked; issue a new one` })
      const issued = yield* insertCredential(workerId, options.expiresInSeconds, credentialId)
      yield* sql.unsafe(
        `UPDATE cloud_worker_credentials SET replaced_by_id = $2,
           expires_at = CASE WHEN $3::float8 IS NULL THEN expires_at
             ELSE least(expires_at, now() + make_interval(secs => $3::float8)) END
         WHERE id = $1`,
        [credentialId, issued.credential.id, options.graceSeconds ?? null]
      )
      yield* audit(actor, "worker_credential.rotated", credentialId, {
        workerId,
        replacementId: issued.credential.id,
        graceSeconds: options.graceSeconds ?? null
      })
      yield* audit(actor, "worker_credential.issued", issued.credential.id, {
        workerId,
        scopes: issued.credential.scopes,
        expiresAt: issued.credential.expiresAt,
        replacesId: credentialId
      })
      return issued
    }))
  }, Effect.catchTag("SqlError", Effect.die))

  const revokeCredential = Effect.fn("WorkerRegistry.revokeCredential")(function*(workerId: string, credentialId: string, actor: Actor) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* workerStatus(workerId, actor)
      const rows = yield* sql.unsafe<CredentialRow & { was_revoked: boolean }>(
        `WITH before AS (SELECT id, revoked_at IS NOT NULL AS was_revoked FROM cloud_worker_credentials
           WHERE id = $1 AND worker_id = $2 FOR UPDATE)
         UPDATE cloud_worker_credentials c SET revoked_at = coalesce(c.revoked_at, now())
         FROM before WHERE c.id = before.id
         RETURNING ${CREDENTIAL_COLUMNS.split(", ").map((column) => `c.${column}`).join(", ")}, before.was_revoked`,
        [credentialId, workerId]
      )
      const row = rows[0]
      if (row === undefined) return yield* notFound("credential", credentialId)
      if (!row.was_revoked) yield* audit(actor, "worker_credential.revoked", credentialId, { workerId })
      return credentialOf(row)
    }))
  }, Effect.catchTag("SqlError", Effect.die))

  return WorkerRegistry.of({
    createPool,
    listPools,
    updatePool,
    registerWorker,
    listWorkers,
    transition: transitionWorker,
    listCredentials,
    issueCredential,
    rotateCredential,
    revokeCredential
  })
})

export const layer = Layer.effect(WorkerRegistry, make)
