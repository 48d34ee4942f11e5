import { type EventDraft, type Lease, StaleOwner } from "@cowork/domain"
import { Clock, Effect } from "effect"
import { type CommandCompletion, type EventLog, staleAppendOperation } from "./EventLog.ts"
import type { MemoryTables } from "./MemoryDatabase.ts"
import { liveLease } from "./MemoryFence.ts"
import { appendToLog } from "./MemoryLog.ts"

const append = (db: MemoryTables) => (lease: Lease, drafts: ReadonlyArray<EventDraft>, completion?: CommandCompletion) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const row = liveLease(db, lease, now)
      const command = completion === undefined ? undefined : db.commands.find((c) => c.id === completion.commandId)
      const completable = completion === undefined ||
        (command !== undefined && command.sessionId === lease.sessionId && command.status === "running" &&
          command.claimedEpoch === lease.epoch)
      const last = row === undefined || !completable ? undefined : appendToLog(db, lease.sessionId, drafts, now)
      if (row === undefined || last === undefined) {
        return Effect.fail(new StaleOwner({ sessionId: lease.sessionId, epoch: lease.epoch, operation: staleAppendOperation(completion) }))
      }
      if (command !== undefined && completion !== undefined) {
        command.status = completion.outcome
        command.lastError = completion.error ?? null
        if (completion.checkpointVersion !== undefined) row.checkpointVersion = completion.checkpointVersion
      }
      return Effect.succeed(last)
    })

export const makeEventLogMemory = (db: MemoryTables): EventLog["Service"] => ({
  append: append(db),
  close: (lease, drafts, completion) =>
    Effect.flatMap(append(db)(lease, drafts, completion), (lastSequence) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const row = liveLease(db, lease, now)
        const pending = db.commands.some((c) => c.sessionId === lease.sessionId && c.status === "pending")
        if (row === undefined || pending) return { lastSequence, released: false }
        row.workerId = null
        row.expiresAt = -Infinity
        return { lastSequence, released: true }
      })),
  read: (sessionId, after, limit) =>
    Effect.sync(() =>
      (db.events.get(sessionId) ?? [])
        .filter((event) => event.sequence > after)
        .slice(0, limit)
        .map(({ commandId: _c, attempt: _a, ...event }) => event)
    ),
  bounds: (sessionId) =>
    Effect.sync(() => {
      const projection = db.projections.get(sessionId)
      return projection === undefined
        ? { earliestSequence: 1, latestSequence: 0 }
        : { earliestSequence: projection.earliestSequence, latestSequence: projection.lastSequence }
    }),
  latestSequences: (sessionIds) =>
    Effect.sync(() => {
      const tips = new Map<string, number>()
      for (const sessionId of sessionIds) {
        const projection = db.projections.get(sessionId)
        if (projection !== undefined) tips.set(sessionId, projection.lastSequence)
      }
      return tips
    }),
  changedSince: (orgIds, sinceMs, limit) =>
    Effect.sync(() =>
      [...db.projections]
        .filter(([, projection]) => orgIds.includes(projection.orgId) && projection.updatedAt >= sinceMs)
        .sort(([, a], [, b]) => a.updatedAt - b.updatedAt)
        .slice(0, limit)
        .map(([sessionId, projection]) => ({ orgId: projection.orgId, sessionId, lastSequence: projection.lastSequence }))
    ),
  prune: (sessionId, before) =>
    Effect.sync(() => {
      const projection = db.projections.get(sessionId)
      const log = db.events.get(sessionId)
      if (log !== undefined) db.events.set(sessionId, log.filter((event) => event.sequence >= before))
      if (projection !== undefined) {
        projection.earliestSequence = Math.max(projection.earliestSequence, Math.min(before, projection.lastSequence + 1))
      }
    })
})
