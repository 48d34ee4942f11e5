import {
  answerOf,
  askAgainEvent,
  askKey,
  askOf,
  commandDeadLetteredEvent,
  Conflict,
  type EventDraft,
  NotFound,
  settledIdleEvent
} from "@cowork/domain"
import { Clock, Context, Effect, Layer, Option } from "effect"
import { MemoryDatabase, type MemoryTables } from "./MemoryDatabase.ts"
import { appendToLog } from "./MemoryLog.ts"

/** A session's latest prompt when it ended `failed` or `dead`: what a retry queues again. */
export interface FailedPrompt {
  readonly orgId: string
  readonly sessionId: string
  readonly commandId: string
  readonly status: "failed" | "dead"
  readonly text: string
  readonly agent?: string | undefined
}

/** A command an operator took out of its session's mailbox. */
export interface DeadLetteredCommand {
  readonly orgId: string
  readonly sessionId: string
  readonly commandId: string
  readonly kind: string
}

/**
 * The operator's queue controls besides abort (no direct database edits): which prompt a retry re-queues, and taking
 * a pending command out of the mailbox (`dead`, with the operator's reason as its error, and `command.dead_lettered`
 * appended to its session's log in the same transaction; then `session.status` idle when that left a `queued` session
 * with nothing pending or running). `orgId` scopes every call to one org (another org's session or command is `NotFound`);
 * `undefined` is a platform operator's call, across orgs. A running command is never dead-lettered here (its owner
 * holds the session's lease: abort the session instead), so this never races an owner's fenced writes.
 */
export class QueueControls extends Context.Service<QueueControls, {
  /** `Option.none` when the session has no prompt or its latest one did not fail. */
  readonly latestFailedPrompt: (orgId: string | undefined, sessionId: string) => Effect.Effect<Option.Option<FailedPrompt>, NotFound>
  /** `Conflict` (naming the status) when the command is not pending. */
  readonly deadLetter: (orgId: string | undefined, commandId: string, reason: string) => Effect.Effect<DeadLetteredCommand, NotFound | Conflict>
}>()("cowork/QueueControls") {
  static readonly layerMemory: Layer.Layer<QueueControls, never, MemoryDatabase> = Layer.effect(
    QueueControls,
    Effect.map(Effect.service(MemoryDatabase), (db) => makeQueueControlsMemory(db))
  )
}

const inScope = (orgId: string | undefined, rowOrg: string) => orgId === undefined || orgId === rowOrg

const makeQueueControlsMemory = (db: MemoryTables): QueueControls["Service"] => ({
  latestFailedPrompt: (orgId, sessionId) =>
    Effect.gen(function*() {
      const session = db.sessions.get(sessionId)
      if (session === undefined || !inScope(orgId, session.orgId)) return yield* new NotFound({ message: `session ${sessionId} not found` })
      const latest = db.commands.findLast((command) => command.sessionId === sessionId && command.kind === "prompt")
      if (latest === undefined || (latest.status !== "failed" && latest.status !== "dead")) return Option.none()
      return Option.some({
        orgId: latest.orgId,
        sessionId,
        commandId: latest.id,
        status: latest.status,
        text: latest.payload.text ?? "",
        agent: latest.payload.agent
      })
    }),
  deadLetter: (orgId, commandId, reason) =>
    Effect.gen(function*() {
      const command = db.commands.find((row) => row.id === commandId)
      if (command === undefined || !inScope(orgId, command.orgId)) return yield* new NotFound({ message: `command ${commandId} not found` })
      if (command.status !== "pending") {
        return yield* new Conflict({
          message: `command ${commandId} is ${command.status}: only a pending command is dead-lettered (abort its session to stop a running one)`,
          details: { field: "status", status: command.status }
        })
      }
      const now = yield* Clock.currentTimeMillis
      command.status = "dead"
      command.lastError = reason
      const events: Array<EventDraft> = [commandDeadLetteredEvent({ commandId, kind: command.kind, reason, cause: "operator" })]
      const settled = !db.commands.some((row) => row.sessionId === command.sessionId && (row.status === "pending" || row.status === "running"))
      if (settled && db.projections.get(command.sessionId)?.status === "queued") events.push(settledIdleEvent(commandId))
      const answer = answerOf(command)
      const ask = answer === undefined ? undefined : askOf(answer)
      const pending = ask === undefined ? undefined : db.projections.get(command.sessionId)?.asks.get(askKey(ask.ask, ask.askId))
      if (pending !== undefined) events.push(askAgainEvent(pending, { commandId, reason }))
      appendToLog(db, command.sessionId, events, now)
      return { orgId: command.orgId, sessionId: command.sessionId, commandId, kind: command.kind }
    })
})
