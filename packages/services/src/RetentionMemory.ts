import { Clock, Effect } from "effect"
import type { MemoryTables } from "./MemoryDatabase.ts"
import type { Retention, RetentionPolicy } from "./Retention.ts"

/** Commands a pass may delete: acked or cancelled (never open, failed or dead). */
const RETIRED = new Set(["acked", "cancelled"])

/** The memory twin of the Postgres retention batch (one synchronous step per batch). */
export const makeRetentionMemory = (db: MemoryTables): Retention["Service"] => ({
  batch: (policy: RetentionPolicy, after: string | null, limit: number) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const ids = [...db.sessions.values()]
        .filter((s) => (after === null || s.id > after) && (policy.orgId === undefined || s.orgId === policy.orgId))
        .map((s) => s.id)
        .sort()
        .slice(0, Math.max(0, limit))
      const batch = new Set(ids)
      let commandsDeleted = 0
      if (policy.commandsOlderThanMs !== undefined) {
        const cutoff = now - policy.commandsOlderThanMs
        const openRuns = new Set(
          db.workflowTables.runs.filter((r) => r.status === "queued" || r.status === "running").map((r) => r.commandId)
        )
        for (let i = db.commands.length - 1; i >= 0; i--) {
          const c = db.commands[i]!
          if (!batch.has(c.sessionId) || !RETIRED.has(c.status) || c.createdAt >= cutoff || openRuns.has(c.id)) continue
          db.commands.splice(i, 1)
          commandsDeleted++
        }
      }
      let eventsDeleted = 0
      if (policy.eventsOlderThanMs !== undefined) {
        const cutoff = now - policy.eventsOlderThanMs
        for (const id of ids) {
          const projection = db.projections.get(id)
          const log = db.events.get(id)
          if (projection === undefined || log === undefined) continue
          const firstKept = log.find((e) => Date.parse(e.createdAt) >= cutoff)?.sequence ?? projection.lastSequence + 1
          const before = Math.min(projection.projectedSequence + 1, firstKept)
          const kept = log.filter((e) => e.sequence >= before)
          eventsDeleted += log.length - kept.length
          db.events.set(id, kept)
          if (before > projection.earliestSequence) projection.earliestSequence = before
        }
      }
      return {
        sessions: ids.length,
        commandsDeleted,
        eventsDeleted,
        next: ids.length === limit && limit > 0 ? ids[ids.length - 1]! : null
      }
    })
})
