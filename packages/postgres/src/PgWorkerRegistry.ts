import {
  Conflict,
  IllegalTransition,
  transition,
  type WorkerAction,
  type WorkerLifecycle,
  workerTransitions
} from "@cowork/domain"
import { type Actor, type NewWorker, QUEUED_RETRY_AFTER_MS, quotaExceeded, type RegistryScope, randomId, WorkerRegistry } from "@cowork/services"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { makeWorkerCredentials } from "./PgWorkerCredentials.ts"
import {
  inScope,
  notFound,
  poolOf,
  type PoolRow,
  registryAudit,
  WORKER_COLUMNS,
  WORKER_FROM,
  workerOf,
  type WorkerRow
} from "./WorkerRegistryRows.ts"

/** Registry over `cloud_worker_pools`, `cloud_workers`, `cloud_worker_credentials`; audit rows in `cloud_audit_events`. */
const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const audit = registryAudit(sql)

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

  const registerWorker = Effect.fn("WorkerRegistry.registerWorker")(function*(input: NewWorker, actor: Actor) {
    const id = input.id ?? `wrk_${randomId(16)}`
    return yield* sql.withTransaction(Effect.gen(function*() {
      const pool = yield* sql.unsafe<{ id: string; org_id: string | null }>(
        `SELECT p.id, p.org_id FROM cloud_worker_pools p WHERE p.id = $1 AND ${inScope("p", "$2")}`,
        [input.poolId, actor.orgId]
      )
      if (pool[0] === undefined) return yield* notFound("pool", input.poolId)
      const orgId = pool[0].org_id
      if (input.activeWorkers !== undefined && orgId !== null) {
        // Registrations of one org serialize here, so two at once cannot both take the last place.
        yield* sql.unsafe(`SELECT pg_advisory_xact_lock(hashtext('cowork-active-workers:' || $1))`, [orgId])
        const active = yield* sql.unsafe<{ n: number }>(
          `SELECT count(*)::int AS n FROM cloud_workers w JOIN cloud_worker_pools p ON p.id = w.pool_id
           WHERE p.org_id = $1 AND w.status NOT IN ('retired', 'revoked')`,
          [orgId]
        )
        if (Number(active[0]?.n ?? 0) >= input.activeWorkers) {
          return yield* quotaExceeded("active_workers", input.activeWorkers, QUEUED_RETRY_AFTER_MS)
        }
      }
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
      // The row shows the lifecycle at once, a resume included (an idle worker may not beat again for a minute, and
      // the claim refuses a worker whose row says draining; a process draining for shutdown claims nothing anyway).
      yield* sql.unsafe(
        `UPDATE cloud_worker_heartbeats SET status = $2 WHERE worker_id = $1 AND ($2 <> 'active' OR status = 'draining')`,
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

  return WorkerRegistry.of({
    createPool,
    listPools,
    updatePool,
    registerWorker,
    listWorkers,
    transition: transitionWorker,
    ...makeWorkerCredentials(sql)
  })
})

export const layer = Layer.effect(WorkerRegistry, make)
