import { appendEvents } from "@cowork/postgres"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * Creates a session the way the web role does (session, projection and unowned lease rows, plus its
 * `session.created` event) and returns its id.
 */
export const createSession = Effect.fn("WorkerFixtures.createSession")(function*(sessionId: string, orgId = "org_test") {
  const sql = yield* SqlClient.SqlClient
  yield* sql`INSERT INTO cloud_orgs (id, name) VALUES (${orgId}, ${orgId}) ON CONFLICT DO NOTHING`
  yield* sql`INSERT INTO cloud_sessions (id, org_id, title) VALUES (${sessionId}, ${orgId}, 'test')`
  yield* sql`INSERT INTO cloud_session_projections (session_id, org_id) VALUES (${sessionId}, ${orgId})`
  yield* sql`INSERT INTO cloud_worker_leases (session_id) VALUES (${sessionId})`
  yield* appendEvents(sessionId, [{ type: "session.created", payload: { title: "test" } }], undefined)
  return sessionId
})

/** Queues a command and its `prompt.submitted` event, as `POST /prompt` does. */
export const enqueue = Effect.fn("WorkerFixtures.enqueue")(function*(
  sessionId: string,
  commandId: string,
  kind: "prompt" | "abort" = "prompt",
  text = "hello"
) {
  const sql = yield* SqlClient.SqlClient
  yield* sql`INSERT INTO cloud_session_commands (id, session_id, org_id, kind, payload)
    SELECT ${commandId}, id, org_id, ${kind}, ${JSON.stringify({ text })}::jsonb FROM cloud_sessions WHERE id = ${sessionId}`
  if (kind === "prompt") {
    yield* appendEvents(sessionId, [{ type: "prompt.submitted", payload: { commandId, text } }], undefined)
  }
})

export const commandRow = Effect.fn("WorkerFixtures.commandRow")(function*(commandId: string) {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ status: string; attempt_count: number }>`SELECT status, attempt_count FROM cloud_session_commands WHERE id = ${commandId}`
  const row = rows[0]!
  return { status: row.status, attemptCount: Number(row.attempt_count) }
})

export const eventTypes = Effect.fn("WorkerFixtures.eventTypes")(function*(sessionId: string) {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ sequence: bigint; type: string; payload: Record<string, unknown> }>`
    SELECT sequence, type, payload FROM cloud_session_events WHERE session_id = ${sessionId} ORDER BY sequence`
  return rows.map((row) => ({ sequence: Number(row.sequence), type: row.type, payload: row.payload }))
})

/** Pushes a lease's expiry into the past, as if its owner stopped renewing long ago. */
export const backdateLease = Effect.fn("WorkerFixtures.backdateLease")(function*(sessionId: string) {
  const sql = yield* SqlClient.SqlClient
  yield* sql`UPDATE cloud_worker_leases SET expires_at = now() - interval '1 second' WHERE session_id = ${sessionId} AND worker_id IS NOT NULL`
})
