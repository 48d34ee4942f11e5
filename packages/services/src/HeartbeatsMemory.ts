import { observedHeartbeat, WorkerRefused } from "@cowork/domain"
import { Clock, Effect } from "effect"
import type { HeartbeatInput, Heartbeats } from "./Heartbeats.ts"
import type { MemoryTables } from "./MemoryDatabase.ts"
import { presentedCredential } from "./WorkerCredentials.ts"

/** The memory twin of `PgHeartbeats`: the same refusals, the same lifecycle status for registered workers. */
export const makeHeartbeatsMemory = (db: MemoryTables): Heartbeats["Service"] => {
  const refusal = (input: HeartbeatInput, now: number): string | undefined => {
    const worker = db.workers.get(input.workerId)
    const presented = presentedCredential(input.credential)
    if (worker === undefined) {
      return presented.credentialId === null ? undefined : "a credential was presented but the worker is not registered"
    }
    if (worker.status === "retired" || worker.status === "revoked") return `the worker is ${worker.status}`
    if (presented.credentialId === null) return "the worker is registered: a credential is required"
    const stored = db.credentials.get(presented.credentialId)
    const valid = stored !== undefined && stored.workerId === worker.id && stored.secretHash === presented.secretHash &&
      stored.revokedAt === null && Date.parse(stored.expiresAt) > now
    if (!valid) return "the credential is invalid, expired or revoked"
    db.credentials.set(stored.id, { ...stored, lastUsedAt: new Date(now).toISOString() })
    return undefined
  }

  return {
    beat: (input) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const reason = refusal(input, now)
        if (reason !== undefined) return Effect.fail(new WorkerRefused({ workerId: input.workerId, reason }))
        const worker = db.workers.get(input.workerId)
        const { credential: _credential, ...row } = input
        db.heartbeats.set(input.workerId, {
          ...row,
          poolId: worker?.poolId ?? input.poolId,
          status: worker === undefined || worker.status === "active" ? input.status : worker.status,
          lastSeenAt: now
        })
        return Effect.void
      }),
    list: (freshWithinMs, orgId) =>
      Effect.map(Clock.currentTimeMillis, (now) =>
        [...db.heartbeats.values()]
          .filter((row) => {
            const poolOrg = row.poolId === null ? null : db.pools.get(row.poolId)?.orgId ?? null
            return orgId === undefined || poolOrg === null || poolOrg === orgId
          })
          .sort((a, b) => (a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : 0))
          .map((row) =>
            observedHeartbeat({
              workerId: row.workerId,
              role: row.role,
              poolId: row.poolId,
              status: row.status,
              version: row.version,
              region: row.region,
              capabilities: row.capabilities,
              currentLoad: row.currentLoad,
              activeWorkIds: orgId === undefined
                ? row.activeWorkIds
                : row.activeWorkIds.filter((sessionId) => db.sessions.get(sessionId)?.orgId === orgId),
              lastSeenAt: new Date(row.lastSeenAt).toISOString(),
              ageMs: now - row.lastSeenAt,
              intervalMs: row.intervalMs
            }, freshWithinMs))),
    prune: (retentionMs) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        let pruned = 0
        for (const [workerId, row] of db.heartbeats) {
          if (now - row.lastSeenAt > retentionMs) {
            db.heartbeats.delete(workerId)
            pruned++
          }
        }
        return pruned
      })
  }
}
