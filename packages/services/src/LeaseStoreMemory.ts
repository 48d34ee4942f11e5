import { deadLetteredEvents, type Lease, StaleOwner, type StaleOwnerOperation } from "@cowork/domain"
import { Clock, Effect, PubSub, type Redacted } from "effect"
import type { CommandSignal } from "./ChangeFeed.ts"
import type { LeaseStore, ReapOptions } from "./LeaseStore.ts"
import type { MemoryTables } from "./MemoryDatabase.ts"
import { liveLease, mayRenew } from "./MemoryFence.ts"
import { appendToLog } from "./MemoryLog.ts"
import { presentedCredential } from "./WorkerCredentials.ts"

/**
 * Commands still `running` on a session taken over go back to `pending` for another attempt, or become `dead` once
 * `maxAttempts` attempts were abandoned (claim and the reaper, as in Postgres); a dead command's terminal event
 * (`command.dead_lettered`, then `session.idle` with outcome `dead`) settles its session.
 */
export const recoverRunning = (db: MemoryTables, sessionId: string, maxAttempts: number, now: number) => {
  let requeued = 0
  let dead = 0
  for (const command of db.commands) {
    if (command.sessionId !== sessionId || command.status !== "running") continue
    command.attemptCount += 1
    command.lastError = `attempt ${command.attemptCount} abandoned by worker ${command.claimedBy ?? "?"}`
    command.claimedEpoch = null
    command.claimedBy = null
    if (command.attemptCount >= maxAttempts) {
      command.status = "dead"
      dead++
      appendToLog(db, sessionId, deadLetteredEvents({ commandId: command.id, kind: command.kind, attempts: command.attemptCount, reason: command.lastError }), now)
    } else {
      command.status = "pending"
      requeued++
    }
  }
  return { requeued, dead }
}

const hasCommand = (db: MemoryTables, sessionId: string, statuses: ReadonlyArray<string>) =>
  db.commands.some((command) => command.sessionId === sessionId && statuses.includes(command.status))

/**
 * How many sessions `workerId` may claim now: the memory twin of the Postgres claim's allowance. Unmanaged (not
 * registered, no credential): `limit`. Managed: `active` in an `active` pool with a valid credential, within the
 * pool's `maxConcurrentWork` (live leases of its workers) and `maxWorkers` (workers holding work).
 */
const allowance = (db: MemoryTables, workerId: string, limit: number, credential: Redacted.Redacted<string> | undefined, now: number) => {
  const worker = db.workers.get(workerId)
  const presented = presentedCredential(credential)
  if (presented.credentialId === null && worker === undefined) return limit
  if (worker === undefined || worker.status !== "active") return 0
  const pool = db.pools.get(worker.poolId)
  const stored = db.credentials.get(presented.credentialId ?? "")
  const valid = stored !== undefined && stored.workerId === workerId && stored.secretHash === presented.secretHash &&
    stored.revokedAt === null && Date.parse(stored.expiresAt) > now
  if (pool === undefined || pool.status !== "active" || !valid) return 0
  let liveWork = 0
  const working = new Set<string>()
  for (const lease of db.leases.values()) {
    if (lease.workerId === null || lease.expiresAt <= now || db.workers.get(lease.workerId)?.poolId !== pool.id) continue
    liveWork++
    working.add(lease.workerId)
  }
  if (!working.has(workerId) && working.size >= pool.maxWorkers) return 0
  return Math.max(0, Math.min(limit, pool.maxConcurrentWork - liveWork))
}

export const makeLeaseStoreMemory = (db: MemoryTables): LeaseStore["Service"] => {
  const stale = (lease: Lease, operation: StaleOwnerOperation) =>
    new StaleOwner({ sessionId: lease.sessionId, epoch: lease.epoch, operation })

  return {
    claim: (workerId, limit, ttlMs, maxAttempts, credential) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const claimed: Array<Lease> = []
        if (limit <= 0 || db.heartbeats.get(workerId)?.status === "draining") return claimed
        const allowed = allowance(db, workerId, limit, credential, now)
        // A pool that belongs to an org (self-hosted) serves only that org's sessions.
        const tenant = db.pools.get(db.workers.get(workerId)?.poolId ?? "")?.orgId ?? null
        for (const [sessionId, lease] of db.leases) {
          if (claimed.length >= allowed) break
          if (lease.expiresAt > now || !hasCommand(db, sessionId, ["pending", "running"])) continue
          if (tenant !== null && db.sessions.get(sessionId)?.orgId !== tenant) continue
          lease.workerId = workerId
          lease.epoch += 1
          lease.expiresAt = now + ttlMs
          recoverRunning(db, sessionId, maxAttempts, now)
          claimed.push({
            sessionId,
            workerId,
            epoch: lease.epoch,
            checkpointVersion: lease.checkpointVersion,
            orgId: db.sessions.get(sessionId)?.orgId
          })
        }
        return claimed
      }),
    renew: (lease, ttlMs) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const row = liveLease(db, lease, now)
        if (row === undefined || !mayRenew(db, lease.workerId)) return Effect.fail(stale(lease, "renew"))
        row.expiresAt = now + ttlMs
        return Effect.void
      }),
    releaseIfIdle: (lease) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const row = liveLease(db, lease, now)
        if (row === undefined) return Effect.fail(stale(lease, "release"))
        if (hasCommand(db, lease.sessionId, ["pending"])) return Effect.succeed(false)
        row.workerId = null
        row.expiresAt = -Infinity
        return Effect.succeed(true)
      }),
    expire: (lease) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const row = liveLease(db, lease, now)
        if (row === undefined) return Effect.fail(stale(lease, "expire"))
        row.expiresAt = now
        return Effect.void
      }),
    reapExpired: (options: ReapOptions) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const expired = [...db.leases]
          .filter(([, lease]) => lease.workerId !== null && lease.expiresAt <= now)
          .sort(([, a], [, b]) => a.expiresAt - b.expiresAt)
          .slice(0, options.drainCap)
        let requeued = 0
        let dead = 0
        for (const [sessionId, lease] of expired) {
          lease.workerId = null
          lease.epoch += 1
          lease.expiresAt = -Infinity
          const recovered = recoverRunning(db, sessionId, options.maxAttempts, now)
          requeued += recovered.requeued
          dead += recovered.dead
          if (recovered.requeued > 0) PubSub.publishUnsafe<CommandSignal>(db.commandSignals, { kind: "prompt", sessionId })
        }
        const held = [...db.leases.values()].filter((lease) => lease.workerId !== null && lease.expiresAt > now)
        const nextExpiryInMs = held.length === 0 ? null : Math.min(...held.map((lease) => lease.expiresAt)) - now
        return { reaped: expired.length, capHit: expired.length >= options.drainCap, requeued, dead, nextExpiryInMs }
      })
  }
}
