import {
  answerOf,
  askAgainEvent,
  askOf,
  type CommandKind,
  type CommandPayload,
  commandDeadLetteredEvent,
  Conflict,
  type EventDraft,
  NotFound,
  settledIdleEvent
} from "@cowork/domain"
import { type FailedPrompt, QueueControls } from "@cowork/services"
import { Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import { appendEvents } from "./AppendEvents.ts"

/**
 * Queue controls over `cloud_session_commands`. Dead-lettering updates a command only while it is `pending`: a worker
 * starting it locks the row (`FOR UPDATE`) and re-checks `status = 'pending'` after this update commits, so the
 * command is either started or dead, never both. Its `command.dead_lettered` event is appended in the same
 * transaction.
 */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const orgFilter = (column: string, orgId: string | undefined, index: number) => (orgId === undefined ? "" : ` AND ${column} = $${index}`)
  const scoped = (orgId: string | undefined) => (orgId === undefined ? [] : [orgId])

  const latestFailedPrompt = Effect.fn("QueueControls.latestFailedPrompt")(function*(orgId: string | undefined, sessionId: string) {
    const sessions = yield* sql.unsafe<{ org_id: string }>(
      `SELECT org_id FROM cloud_sessions WHERE id = $1${orgFilter("org_id", orgId, 2)}`,
      [sessionId, ...scoped(orgId)]
    )
    if (sessions[0] === undefined) return yield* new NotFound({ message: `session ${sessionId} not found` })
    const latest = yield* sql.unsafe<{ id: string; status: string; text: string | null; agent: string | null }>(
      `SELECT id, status, payload->>'text' AS text, payload->>'agent' AS agent FROM cloud_session_commands
       WHERE session_id = $1 AND kind = 'prompt' ORDER BY position DESC LIMIT 1`,
      [sessionId]
    )
    const row = latest[0]
    if (row === undefined || (row.status !== "failed" && row.status !== "dead")) return Option.none<FailedPrompt>()
    return Option.some<FailedPrompt>({
      orgId: sessions[0].org_id,
      sessionId,
      commandId: row.id,
      status: row.status,
      text: row.text ?? "",
      agent: row.agent ?? undefined
    })
  }, Effect.catchTag("SqlError", Effect.die))

  const deadLetter = Effect.fn("QueueControls.deadLetter")(function*(orgId: string | undefined, commandId: string, reason: string) {
    const dead = yield* sql.withTransaction(Effect.gen(function*() {
      // The command row first, then the projection row: the order a worker's start takes them in.
      const updated = yield* sql.unsafe<{ org_id: string; session_id: string; kind: CommandKind; payload: CommandPayload }>(
        `UPDATE cloud_session_commands SET status = 'dead', last_error = $2, completed_at = now()
         WHERE id = $1 AND status = 'pending'${orgFilter("org_id", orgId, 3)}
         RETURNING org_id, session_id, kind, payload`,
        [commandId, reason, ...scoped(orgId)]
      )
      const row = updated[0]
      if (row === undefined) return undefined
      const events: Array<EventDraft> = [commandDeadLetteredEvent({ commandId, kind: row.kind, reason, cause: "operator" })]
      // Locked before the check, in its own statement: a prompt committing meanwhile is seen by the check, one not yet
      // committed appends its `prompt.submitted` (queued) after this batch.
      const projection = yield* sql.unsafe<{ status: string }>(
        `SELECT status FROM cloud_session_projections WHERE session_id = $1 FOR UPDATE`,
        [row.session_id]
      )
      if (projection[0]?.status === "queued") {
        const open = yield* sql.unsafe<{ one: number }>(
          `SELECT 1 AS one FROM cloud_session_commands WHERE session_id = $1 AND status IN ('pending', 'running') LIMIT 1`,
          [row.session_id]
        )
        if (open.length === 0) events.push(settledIdleEvent(commandId))
      }
      // A dead answer whose ask is still pending (read under the projection lock: no turn ends meanwhile): asked again.
      const answer = answerOf(row)
      if (answer !== undefined) {
        const { ask, askId } = askOf(answer)
        const pending = yield* sql.unsafe<{ command_id: string | null; payload: Record<string, unknown> }>(
          `SELECT command_id, payload FROM cloud_session_pending_asks WHERE session_id = $1 AND kind = $2 AND ask_id = $3`,
          [row.session_id, ask, askId]
        )
        if (pending[0] !== undefined) events.push(askAgainEvent({ ask, commandId: pending[0].command_id, payload: pending[0].payload }, { commandId, reason }))
      }
      yield* appendEvents(row.session_id, events, undefined).pipe(Effect.provideService(SqlClient.SqlClient, sql))
      return { orgId: row.org_id, sessionId: row.session_id, commandId, kind: row.kind }
    }))
    if (dead !== undefined) return dead
    const existing = yield* sql.unsafe<{ status: string }>(
      `SELECT status FROM cloud_session_commands WHERE id = $1${orgFilter("org_id", orgId, 2)}`,
      [commandId, ...scoped(orgId)]
    )
    if (existing[0] === undefined) return yield* new NotFound({ message: `command ${commandId} not found` })
    return yield* new Conflict({
      message: `command ${commandId} is ${existing[0].status}: only a pending command is dead-lettered (abort its session to stop a running one)`,
      details: { field: "status", status: existing[0].status }
    })
  }, Effect.catchTag("SqlError", Effect.die))

  return QueueControls.of({ latestFailedPrompt, deadLetter })
})

export const layer = Layer.effect(QueueControls, make)
