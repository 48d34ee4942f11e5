import { appendEvents } from "@cowork/postgres"
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"

const seed = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`INSERT INTO cloud_orgs (id, name) VALUES ('org_a', 'a')`
  yield* sql`INSERT INTO cloud_sessions (id, org_id, title) VALUES ('ses_a', 'org_a', 't')`
  yield* sql`INSERT INTO cloud_session_projections (session_id, org_id) VALUES ('ses_a', 'org_a')`
  yield* sql`INSERT INTO cloud_worker_leases (session_id, worker_id, epoch, expires_at) VALUES ('ses_a', 'w1', 3, now() + interval '1 minute')`
  yield* sql`INSERT INTO cloud_session_commands (id, session_id, org_id, kind, payload, status, claimed_epoch) VALUES ('cmd_1', 'ses_a', 'org_a', 'prompt', '{}', 'running', 3)`
})

it.layer(TestDatabase.layer())("appendEvents", (it) => {
  it.effect("allocates contiguous sequences, fences the owner, and completes the command atomically", () =>
    Effect.gen(function*() {
      yield* seed
      const sql = yield* SqlClient.SqlClient
      const first = yield* appendEvents("ses_a", [
        { type: "session.created", payload: { title: "t" } },
        { type: "prompt.submitted", payload: { commandId: "cmd_1", text: "hi" } }
      ], undefined)
      assert.strictEqual(first, 2)
      const stale = yield* appendEvents("ses_a", [{ type: "session.idle", payload: {} }], {
        workerId: "w1", epoch: 2, completion: { commandId: "cmd_1", outcome: "acked" }
      })
      assert.isUndefined(stale)
      const owner = yield* appendEvents("ses_a", [
        { type: "assistant.message", payload: { messageId: "m1", text: "hello", final: true }, commandId: "cmd_1", attempt: 1 },
        { type: "session.idle", payload: {} }
      ], { workerId: "w1", epoch: 3, completion: { commandId: "cmd_1", outcome: "acked" } })
      assert.strictEqual(owner, 4)
      const events = yield* sql<{ sequence: bigint; type: string }>`SELECT sequence, type FROM cloud_session_events WHERE session_id = 'ses_a' ORDER BY sequence`
      assert.deepStrictEqual(events.map((e) => [Number(e.sequence), e.type]), [
        [1, "session.created"], [2, "prompt.submitted"], [3, "assistant.message"], [4, "session.idle"]
      ])
      const cmd = yield* sql<{ status: string }>`SELECT status FROM cloud_session_commands WHERE id = 'cmd_1'`
      assert.strictEqual(cmd[0]!.status, "acked")
      const messages = yield* sql<{ message_id: string; sequence: bigint }>`SELECT message_id, sequence FROM cloud_session_projection_messages ORDER BY sequence`
      assert.deepStrictEqual(messages.map((m) => [m.message_id, Number(m.sequence)]), [["cmd_1", 2], ["m1", 3]])
      const projection = yield* sql<{ status: string }>`SELECT status FROM cloud_session_projections WHERE session_id = 'ses_a'`
      assert.strictEqual(projection[0]!.status, "idle")
      const again = yield* appendEvents("ses_a", [{ type: "session.idle", payload: {} }], {
        workerId: "w1", epoch: 3, completion: { commandId: "cmd_1", outcome: "acked" }
      })
      assert.isUndefined(again, "a command cannot be acked twice")
    }))
})
