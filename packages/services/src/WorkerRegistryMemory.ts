import {
  Conflict,
  IllegalTransition,
  isHeartbeatFresh,
  isTerminal,
  NotFound,
  type RegisteredWorker,
  transition,
  WORKER_CREDENTIAL_SCOPES,
  type WorkerCredentialView,
  type WorkerPool,
  workerTransitions
} from "@cowork/domain"
import { Clock, Effect } from "effect"
import type { MemoryCredential, MemoryTables } from "./MemoryDatabase.ts"
import { QUEUED_RETRY_AFTER_MS, quotaExceeded } from "./QuotaRules.ts"
import { randomId } from "./Secrets.ts"
import { clampCredentialTtl, newWorkerSecret } from "./WorkerCredentials.ts"
import type { RegistryScope, WorkerRegistry } from "./WorkerRegistry.ts"

/** The registry over the memory tables the memory claim and heartbeat read, mirroring `PgWorkerRegistry`. */
export const makeWorkerRegistryMemory = (db: MemoryTables): WorkerRegistry["Service"] => {
  const iso = Effect.map(Clock.currentTimeMillis, (now) => new Date(now).toISOString())
  const view = ({ secretHash: _hash, ...rest }: MemoryCredential): WorkerCredentialView => rest
  const notFound = (what: string) => new NotFound({ message: `no such ${what}` })
  const noNewCredentials = (worker: RegisteredWorker) =>
    new Conflict({ message: `worker ${worker.id} is ${worker.status}: no new credentials` })

  /** The stored worker with its heartbeat: `health` by the heartbeat freshness rule. */
  const withHealth = (worker: RegisteredWorker, freshWithinMs: number, now: number): RegisteredWorker => {
    const beat = db.heartbeats.get(worker.id)
    if (beat === undefined) return { ...worker, health: "unknown", lastHeartbeatAt: null }
    const fresh = isHeartbeatFresh({ ageMs: now - beat.lastSeenAt, status: beat.status, intervalMs: beat.intervalMs }, freshWithinMs)
    return { ...worker, health: fresh ? "healthy" : "unhealthy", lastHeartbeatAt: new Date(beat.lastSeenAt).toISOString() }
  }

  const inScope = (pool: WorkerPool | undefined, scope: RegistryScope): pool is WorkerPool =>
    pool !== undefined && (scope.orgId === null || pool.orgId === scope.orgId)

  const worker = (id: string, scope: RegistryScope) =>
    Effect.suspend(() => {
      const found = db.workers.get(id)
      return found === undefined || !inScope(db.pools.get(found.poolId), scope)
        ? Effect.fail(notFound("worker"))
        : Effect.succeed(found)
    })

  const ownCredential = (workerId: string, credentialId: string, scope: RegistryScope) =>
    Effect.flatMap(worker(workerId, scope), () => {
      const found = db.credentials.get(credentialId)
      return found === undefined || found.workerId !== workerId ? Effect.fail(notFound("credential")) : Effect.succeed(found)
    })

  const issue = (workerId: string, expiresInSeconds: number | undefined, replacesId: string | null) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const fresh = newWorkerSecret()
      const credential: MemoryCredential = {
        id: fresh.credentialId,
        workerId,
        scopes: [...WORKER_CREDENTIAL_SCOPES],
        createdAt: new Date(now).toISOString(),
        expiresAt: new Date(now + clampCredentialTtl(expiresInSeconds) * 1000).toISOString(),
        revokedAt: null,
        lastUsedAt: null,
        replacesId,
        replacedById: null,
        secretHash: fresh.secretHash
      }
      db.credentials.set(credential.id, credential)
      return { credential: view(credential), plaintext: fresh.plaintext }
    })

  return {
    createPool: (input, actor) =>
      Effect.flatMap(iso, (now) => {
        const orgId = actor.orgId ?? input.orgId ?? null
        if (orgId !== null && !db.orgs.has(orgId)) return Effect.fail(notFound("org"))
        const pool: WorkerPool = {
          id: `pool_${randomId(16)}`,
          name: input.name,
          mode: input.mode,
          orgId,
          maxWorkers: input.maxWorkers,
          maxConcurrentWork: input.maxConcurrentWork,
          region: input.region ?? null,
          capabilities: [...(input.capabilities ?? [])],
          status: "active",
          createdAt: now,
          updatedAt: now
        }
        db.pools.set(pool.id, pool)
        return Effect.succeed(pool)
      }),
    listPools: (scope) => Effect.sync(() => [...db.pools.values()].filter((pool) => inScope(pool, scope))),
    updatePool: (poolId, patch, actor) =>
      Effect.gen(function*() {
        const pool = db.pools.get(poolId)
        if (!inScope(pool, actor)) return yield* notFound("pool")
        const defined = Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined))
        const next: WorkerPool = { ...pool, ...defined, updatedAt: yield* iso }
        db.pools.set(poolId, next)
        return next
      }),
    registerWorker: (input, actor) =>
      Effect.gen(function*() {
        if (!inScope(db.pools.get(input.poolId), actor)) return yield* notFound("pool")
        const id = input.id ?? `wrk_${randomId(16)}`
        if (db.workers.has(id)) return yield* new Conflict({ message: `worker ${id} is already registered` })
        const orgId = db.pools.get(input.poolId)?.orgId ?? null
        if (input.activeWorkers !== undefined && orgId !== null) {
          const active = [...db.workers.values()].filter((worker) =>
            db.pools.get(worker.poolId)?.orgId === orgId && worker.status !== "retired" && worker.status !== "revoked"
          ).length
          if (active >= input.activeWorkers) return yield* quotaExceeded("active_workers", input.activeWorkers, QUEUED_RETRY_AFTER_MS)
        }
        const now = yield* iso
        const registered: RegisteredWorker = {
          id,
          poolId: input.poolId,
          name: input.name ?? id,
          status: "pending",
          health: "unknown",
          lastHeartbeatAt: null,
          createdAt: now,
          updatedAt: now
        }
        db.workers.set(id, registered)
        return registered
      }),
    listWorkers: (scope, freshWithinMs) =>
      Effect.map(Clock.currentTimeMillis, (now) =>
        [...db.workers.values()]
          .filter((w) => inScope(db.pools.get(w.poolId), scope))
          .map((w) => withHealth(w, freshWithinMs, now))),
    transition: (workerId, action, actor, freshWithinMs) =>
      Effect.gen(function*() {
        const current = yield* worker(workerId, actor)
        const to = transition(current.status, action)
        if (to === undefined) {
          return yield* new IllegalTransition({ workerId, action, from: current.status, to: workerTransitions[action].to })
        }
        if (to === "active") {
          const pool = db.pools.get(current.poolId)!
          const busy = [...db.workers.values()].filter((other) =>
            other.poolId === pool.id && other.id !== workerId && (other.status === "active" || other.status === "draining")
          ).length
          if (busy >= pool.maxWorkers) {
            return yield* new Conflict({ message: `pool ${pool.id} already has maxWorkers=${pool.maxWorkers} active or draining workers` })
          }
        }
        const nowMs = yield* Clock.currentTimeMillis
        const now = new Date(nowMs).toISOString()
        const next: RegisteredWorker = { ...current, status: to, updatedAt: now }
        db.workers.set(workerId, next)
        const beat = db.heartbeats.get(workerId)
        if (beat !== undefined && (to !== "active" || beat.status === "draining")) db.heartbeats.set(workerId, { ...beat, status: to })
        if (to === "retired" || to === "revoked") {
          for (const [id, credential] of db.credentials) {
            if (credential.workerId === workerId && credential.revokedAt === null) db.credentials.set(id, { ...credential, revokedAt: now })
          }
        }
        if (to === "revoked") {
          for (const lease of db.leases.values()) {
            if (lease.workerId === workerId && lease.expiresAt > nowMs) lease.expiresAt = nowMs
          }
        }
        return withHealth(next, freshWithinMs, nowMs)
      }),
    listCredentials: (workerId, scope) =>
      Effect.map(worker(workerId, scope), () => [...db.credentials.values()].filter((c) => c.workerId === workerId).map(view)),
    issueCredential: (workerId, options, actor) =>
      Effect.gen(function*() {
        const current = yield* worker(workerId, actor)
        if (isTerminal(current.status)) return yield* noNewCredentials(current)
        return yield* issue(workerId, options.expiresInSeconds, null)
      }),
    rotateCredential: (workerId, credentialId, options, actor) =>
      Effect.gen(function*() {
        const current = yield* worker(workerId, actor)
        if (isTerminal(current.status)) return yield* noNewCredentials(current)
        const old = yield* ownCredential(workerId, credentialId, actor)
        if (old.revokedAt !== null) return yield* new Conflict({ message: `credential ${credentialId} is revoked` })
        const issued = yield* issue(workerId, options.expiresInSeconds, credentialId)
        const now = yield* Clock.currentTimeMillis
        const expiresAt = options.graceSeconds === undefined
          ? old.expiresAt
          : new Date(Math.min(Date.parse(old.expiresAt), now + options.graceSeconds * 1000)).toISOString()
        db.credentials.set(credentialId, { ...old, replacedById: issued.credential.id, expiresAt })
        return issued
      }),
    revokeCredential: (workerId, credentialId, actor) =>
      Effect.gen(function*() {
        const old = yield* ownCredential(workerId, credentialId, actor)
        const next = old.revokedAt === null ? { ...old, revokedAt: yield* iso } : old
        db.credentials.set(credentialId, next)
        return view(next)
      })
  }
}
