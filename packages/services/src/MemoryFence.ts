import type { Lease } from "@cowork/domain"
import type { MemoryLease, MemoryTables } from "./MemoryDatabase.ts"

/**
 * The live-lease fence on the memory tables, the twin of the Postgres `liveLease` condition: `(session, epoch,
 * worker)` is the session's lease, unexpired at `now`, and the worker is not a revoked registered worker. Returns
 * the lease row when live.
 */
export const liveLease = (db: MemoryTables, lease: Lease, now: number): MemoryLease | undefined => {
  const row = db.leases.get(lease.sessionId)
  if (row === undefined || row.epoch !== lease.epoch || row.workerId !== lease.workerId || row.expiresAt <= now) {
    return undefined
  }
  return db.workers.get(lease.workerId)?.status === "revoked" ? undefined : row
}

/** Renewal needs an `active` or `draining` registered worker in a pool that is not `paused` (unmanaged: always). */
export const mayRenew = (db: MemoryTables, workerId: string): boolean => {
  const worker = db.workers.get(workerId)
  if (worker === undefined) return true
  return (worker.status === "active" || worker.status === "draining") && db.pools.get(worker.poolId)?.status !== "paused"
}
