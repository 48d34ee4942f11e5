import { Conflict, NotFound } from "@cowork/domain"
import { type FailedPrompt, QueueControls } from "@cowork/services"
import { Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"

/**
 * Queue controls over `cloud_session_commands`. Dead-lettering updates a command only while it is `pending`: a worker
 * starting it locks the row (`FOR UPDATE`) and re-checks `status = 'pending'` after this update commits, so the
 * command is either started or dead, never both.
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
    const updated = yield* sql.unsafe<{ org_id: string; session_id: string; kind: string }>(
      `UPDATE cloud_session_commands SET status = 'dead', last_error = $2, completed_at = now()
       WHERE id = $1 AND status = 'pending'${orgFilter("org_id", orgId, 3)}
       RETURNING org_id, session_id, kind`,
      [commandId, reason, ...scoped(orgId)]
    )
    if (updated[0] !== undefined) {
      return { orgId: updated[0].org_id, sessionId: updated[0].session_id, commandId, kind: updated[0].kind }
    }
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
