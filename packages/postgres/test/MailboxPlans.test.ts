import { PgCommandQueue, PgEventLog, PgLeaseStore } from "@cowork/postgres"
import { CommandQueue, EventLog, LeaseStore } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import { createSession, enqueue } from "./support/WorkerFixtures.ts"

const Stores = Layer.mergeAll(PgLeaseStore.layer, PgCommandQueue.layer, PgEventLog.layer).pipe(
  Layer.provideMerge(TestDatabase.layer())
)

/** Issue 15 target 3: the owner's mailbox statements stay flat as the history and the org's backlog grow. */
it.layer(Stores, { timeout: 60_000 })("mailbox plans", (it) => {
  it.effect("start, close, next, the completing append and releaseIfIdle reach the session's mailbox by its key, not through the org's or the global pending index, under statistics of a large history taken while no command was pending", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const queue = yield* CommandQueue
      const log = yield* EventLog
      const leases = yield* LeaseStore
      yield* createSession("ses_mine")
      // 50 other sessions of the same org with 400 acked commands each, analyzed while nothing is pending: the
      // statistics say no command is pending (the state a large, rarely analyzed history is in).
      yield* sql.unsafe(`INSERT INTO cloud_sessions (id, org_id, title) SELECT 'ses_other_' || g, 'org_test', 'other' FROM generate_series(1, 50) g`)
      yield* sql.unsafe(`INSERT INTO cloud_session_commands (id, session_id, org_id, kind, payload, status, completed_at)
        SELECT 'cmd_old_' || g || '_' || k, 'ses_other_' || g, 'org_test', 'prompt', '{}'::jsonb, 'acked', now()
        FROM generate_series(1, 50) g, generate_series(1, 400) k`)
      yield* sql.unsafe(`ANALYZE cloud_session_commands`)
      // Then a backlog on the other sessions (150 pending), and two prompts for ours.
      yield* sql.unsafe(`INSERT INTO cloud_session_commands (id, session_id, org_id, kind, payload)
        SELECT 'cmd_queued_' || g || '_' || k, 'ses_other_' || g, 'org_test', 'prompt', '{}'::jsonb
        FROM generate_series(1, 50) g, generate_series(1, 3) k`)
      yield* enqueue("ses_mine", "cmd_mine_1")
      yield* enqueue("ses_mine", "cmd_mine_2")
      const epoch = (yield* sql<{ epoch: number }>`UPDATE cloud_worker_leases
        SET worker_id = 'worker-1', epoch = epoch + 1, expires_at = now() + interval '1 hour'
        WHERE session_id = 'ses_mine' RETURNING epoch::int AS epoch`)[0]!.epoch
      const lease = { sessionId: "ses_mine", workerId: "worker-1", epoch: Number(epoch) }

      // One transaction, so its own index-scan counters (pg_stat_get_xact_numscans) hold exactly these statements.
      const scans = yield* sql.withTransaction(Effect.gen(function*() {
        const first = Option.getOrThrow(yield* queue.start(lease))
        assert.strictEqual(first.id, "cmd_mine_1")
        const closed = yield* log.close(lease, [{ type: "session.idle", payload: { commandId: first.id, outcome: "acked" }, commandId: first.id, attempt: 1 }], { commandId: first.id, outcome: "acked" })
        assert.isFalse(closed.released, "a prompt is still pending")
        const second = Option.getOrThrow(yield* queue.next(lease))
        assert.strictEqual(second.id, "cmd_mine_2")
        yield* log.append(lease, [{ type: "session.idle", payload: { commandId: second.id, outcome: "acked" }, commandId: second.id, attempt: 1 }], { commandId: second.id, outcome: "acked" })
        assert.isTrue(yield* leases.releaseIfIdle(lease))
        return yield* sql<{ name: string; scans: number }>`SELECT c.relname AS name, pg_stat_get_xact_numscans(c.oid)::int AS scans
          FROM pg_class c WHERE c.relname IN ('cloud_session_commands_org_pending', 'cloud_session_commands_pending',
            'cloud_session_commands_session_pending', 'cloud_session_commands_open')`
      }))
      const byName = Object.fromEntries(scans.map((row) => [row.name, Number(row.scans)]))
      assert.strictEqual(byName["cloud_session_commands_org_pending"], 0, JSON.stringify(byName))
      assert.strictEqual(byName["cloud_session_commands_pending"], 0, JSON.stringify(byName))
      assert.isAbove((byName["cloud_session_commands_session_pending"] ?? 0) + (byName["cloud_session_commands_open"] ?? 0), 0, JSON.stringify(byName))
    }))
})
