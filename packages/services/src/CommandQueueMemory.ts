import { type CommandKind, isAnswerKind, type Lease, type RunnableCommand, StaleOwner, turnOpeningEvents } from "@cowork/domain"
import { Clock, Effect, Option } from "effect"
import type { CommandQueue } from "./CommandQueue.ts"
import type { MemoryTables } from "./MemoryDatabase.ts"
import { liveLease } from "./MemoryFence.ts"
import { appendToLog } from "./MemoryLog.ts"

export const makeCommandQueueMemory = (db: MemoryTables): CommandQueue["Service"] => {
  const oldestPending = (sessionId: string, kinds: (kind: CommandKind) => boolean = () => true) =>
    db.commands.find((command) => command.sessionId === sessionId && command.status === "pending" && kinds(command.kind))
  const stale = (lease: Lease, operation: "next" | "note_error") =>
    Effect.fail(new StaleOwner({ sessionId: lease.sessionId, epoch: lease.epoch, operation }))

  const take = (lease: Lease, kinds?: (kind: CommandKind) => boolean) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        if (liveLease(db, lease, now) === undefined) return stale(lease, "next")
        const command = oldestPending(lease.sessionId, kinds)
        if (command === undefined) return Effect.succeed(Option.none<RunnableCommand>())
        command.status = "running"
        command.claimedEpoch = lease.epoch
        command.claimedBy = lease.workerId
        return Effect.succeed(Option.some<RunnableCommand>({
          id: command.id,
          sessionId: command.sessionId,
          kind: command.kind,
          payload: command.payload,
          attempt: command.attemptCount + 1,
          abandonedAttempts: command.attemptCount,
          traceParent: command.traceParent ?? undefined
        }))
      })

  return {
    next: (lease) => take(lease),
    nextAnswer: (lease) => take(lease, isAnswerKind),
    start: (lease) =>
      Effect.flatMap(take(lease), (started) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          if (started._tag === "Some" && started.value.kind === "prompt") {
            appendToLog(db, lease.sessionId, turnOpeningEvents(started.value), now)
          }
          return started
        })),
    noteError: (lease, message) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        if (liveLease(db, lease, now) === undefined) return stale(lease, "note_error")
        const command = oldestPending(lease.sessionId)
        if (command === undefined) return Effect.succeed(Option.none<string>())
        command.lastError = message
        return Effect.succeed(Option.some(command.id))
      }),
    backlog: (limit, orgId) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const pending = db.commands.filter((command) =>
          command.status === "pending" && (orgId === undefined || command.orgId === orgId)
        )
        const depth = Math.min(pending.length, limit)
        const oldest = pending[0]
        return { depthEstimate: depth, capped: depth >= limit, oldestAgeMs: oldest === undefined ? 0 : Math.max(0, now - oldest.createdAt) }
      })
  }
}
