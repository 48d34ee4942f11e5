import { askKey, Conflict, NotFound } from "@cowork/domain"
import { Clock, Effect } from "effect"
import type { MemoryTables } from "./MemoryDatabase.ts"
import { replayLog, sameAsks, sameMessages } from "./ProjectionReplay.ts"
import type { ProjectionStatus, Projections } from "./Projections.ts"

export const makeProjectionsMemory = (db: MemoryTables): Projections["Service"] => {
  const inspect = (sessionId: string) => {
    const projection = db.projections.get(sessionId)
    if (projection === undefined) return undefined
    const events = db.events.get(sessionId) ?? []
    const expected = replayLog(events)
    const stored = [...projection.messages.values()].sort((a, b) => a.sequence - b.sequence || (a.messageId < b.messageId ? -1 : 1))
    const status: ProjectionStatus = {
      sessionId,
      status: projection.status,
      lastSequence: projection.lastSequence,
      projectedSequence: projection.projectedSequence,
      lagEvents: projection.lastSequence - projection.projectedSequence,
      earliestSequence: projection.earliestSequence,
      messageRows: stored.length,
      expectedMessageRows: expected.messages.length,
      expectedStatus: expected.status,
      consistent: projection.lastSequence === projection.projectedSequence && projection.status === expected.status &&
        sameMessages(stored, expected.messages) && sameAsks([...projection.asks.values()], expected.asks)
    }
    return { projection, status, expected, maxSequence: events.at(-1)?.sequence ?? 0 }
  }
  const notFound = (sessionId: string) => new NotFound({ message: `session ${sessionId} not found` })

  return {
    status: (sessionId) =>
      Effect.suspend(() => {
        const found = inspect(sessionId)
        return found === undefined ? Effect.fail(notFound(sessionId)) : Effect.succeed(found.status)
      }),
    repair: (sessionId) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const found = inspect(sessionId)
        if (found === undefined) return yield* notFound(sessionId)
        const before = found.status
        if (before.consistent) return { before, after: before, changed: false }
        if (before.earliestSequence > 1) {
          return yield* new Conflict({
            message: `session ${sessionId}: events before sequence ${before.earliestSequence} were pruned; the log cannot rebuild the projection`
          })
        }
        const { projection, expected, maxSequence } = found
        projection.messages.clear()
        for (const message of expected.messages) projection.messages.set(message.messageId, message)
        projection.asks.clear()
        for (const ask of expected.asks) projection.asks.set(askKey(ask.ask, ask.askId), ask)
        projection.status = expected.status
        projection.lastSequence = Math.max(projection.lastSequence, maxSequence)
        projection.projectedSequence = projection.lastSequence
        projection.updatedAt = now
        return { before, after: inspect(sessionId)!.status, changed: true }
      }),
    maxLag: Effect.sync(() => {
      let lag = 0
      for (const projection of db.projections.values()) lag = Math.max(lag, projection.lastSequence - projection.projectedSequence)
      return lag
    })
  }
}
