import { PgCommandQueue, PgEventLog, PgLeaseStore, PgProjections, PgSessionStore } from "@cowork/postgres"
import { CommandQueue, EventLog, LeaseStore, Projections, SessionStore } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"
import { createSession, enqueue } from "./support/WorkerFixtures.ts"

const Stores = Layer.mergeAll(PgLeaseStore.layer, PgCommandQueue.layer, PgEventLog.layer, PgSessionStore.layer, PgProjections.layer).pipe(
  Layer.provideMerge(TestDatabase.layer())
)

/** 50 other sessions of `org` with 400 acked commands each, analyzed while nothing is pending, then 3 pending each. */
const historyThenBacklog = (org: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`INSERT INTO cloud_sessions (id, org_id, title) SELECT $1 || '_other_' || g, $1, 'other' FROM generate_series(1, 50) g`, [org])
    yield* sql.unsafe(`INSERT INTO cloud_session_commands (id, session_id, org_id, kind, payload, status, completed_at)
      SELECT $1 || '_old_' || g || '_' || k, $1 || '_other_' || g, $1, 'prompt', '{}'::jsonb, 'acked', now()
      FROM generate_series(1, 50) g, generate_series(1, 400) k`, [org])
    yield* sql.unsafe(`ANALYZE cloud_session_commands`)
    yield* sql.unsafe(`INSERT INTO cloud_session_commands (id, session_id, org_id, kind, payload)
      SELECT $1 || '_queued_' || g || '_' || k, $1 || '_other_' || g, $1, 'prompt', '{}'::jsonb
      FROM generate_series(1, 50) g, generate_series(1, 3) k`, [org])
  })

/** Index scans of the current transaction on the indexes of `table`, by index name. */
const xactScansOf = (table: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ name: string; scans: number }>`SELECT c.relname AS name, pg_stat_get_xact_numscans(c.oid)::int AS scans
      FROM pg_class c WHERE c.relkind = 'i' AND c.relname LIKE ${`${table}%`}`
    return Object.fromEntries(rows.map((row) => [row.name, Number(row.scans)]))
  })
const xactScans = xactScansOf("cloud_session_commands")

/** Issue 15 target 3: the owner's mailbox statements stay flat as the history and the org's backlog grow. */
it.layer(Stores, { timeout: 60_000 })("mailbox plans", (it) => {
  it.effect("start, close, next, the completing append and releaseIfIdle reach the session's mailbox by its key, not through the org's or the global pending index, under statistics of a large history taken while no command was pending", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const queue = yield* CommandQueue
      const log = yield* EventLog
      const leases = yield* LeaseStore
      yield* createSession("ses_mine")
      // The statistics say no command is pending (the state a large, rarely analyzed history is in); then a backlog.
      yield* historyThenBacklog("org_test")
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
        return yield* xactScans
      }))
      const byName = scans
      assert.strictEqual(byName["cloud_session_commands_org_pending"], 0, JSON.stringify(byName))
      assert.strictEqual(byName["cloud_session_commands_pending"], 0, JSON.stringify(byName))
      assert.isAbove((byName["cloud_session_commands_session_pending"] ?? 0) + (byName["cloud_session_commands_open"] ?? 0), 0, JSON.stringify(byName))
    }))

  it.effect("a prompt under quotas checks its own session's open prompts by its key, not by walking the org's open prompts", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* SessionStore
      yield* createSession("ses_quota", "org_quota")
      yield* historyThenBacklog("org_quota")
      yield* enqueue("ses_quota", "cmd_quota_1")
      const quota = { promptsPerHour: 10_000, queuedCommands: 10_000, concurrentSessions: 1_000 }
      const scans = yield* sql.withTransaction(Effect.gen(function*() {
        yield* store.prompt("org_quota", "ses_quota", { text: "again", quota })
        return yield* xactScans
      }))
      // The session already has an open prompt: the concurrent_sessions count is skipped, and that check reads the
      // session's own open commands; the queue count reads the org's pending index (its own statement, bounded).
      assert.strictEqual(scans["cloud_session_commands_org_open_prompts"], 0, JSON.stringify(scans))
      assert.isAbove(scans["cloud_session_commands_open"] ?? 0, 0, JSON.stringify(scans))
    }))

  it.effect("fenced writes reach the lease by its primary key, not by walking the held leases, under statistics taken while no lease was held", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const queue = yield* CommandQueue
      const log = yield* EventLog
      const leases = yield* LeaseStore
      yield* createSession("ses_fenced", "org_fenced")
      // 400 other sessions, their lease rows analyzed while none was held (a large, quiet database), then all held.
      yield* sql.unsafe(`INSERT INTO cloud_sessions (id, org_id, title) SELECT 'ses_held_' || g, 'org_fenced', 'held' FROM generate_series(1, 400) g`)
      yield* sql.unsafe(`INSERT INTO cloud_worker_leases (session_id) SELECT 'ses_held_' || g FROM generate_series(1, 400) g`)
      yield* sql.unsafe(`ANALYZE cloud_worker_leases`)
      yield* sql.unsafe(`UPDATE cloud_worker_leases SET worker_id = 'worker-' || (substr(session_id, 10)::int % 4), epoch = 1,
        expires_at = now() + interval '1 hour' WHERE session_id LIKE 'ses_held_%'`)
      yield* enqueue("ses_fenced", "cmd_fenced_1")
      yield* enqueue("ses_fenced", "cmd_fenced_2")
      const epoch = (yield* sql<{ epoch: number }>`UPDATE cloud_worker_leases
        SET worker_id = 'worker-1', epoch = epoch + 1, expires_at = now() + interval '1 hour'
        WHERE session_id = 'ses_fenced' RETURNING epoch::int AS epoch`)[0]!.epoch
      const lease = { sessionId: "ses_fenced", workerId: "worker-1", epoch: Number(epoch) }

      const scans = yield* sql.withTransaction(Effect.gen(function*() {
        yield* leases.renew(lease, 60_000)
        const first = Option.getOrThrow(yield* queue.start(lease))
        yield* log.append(lease, [{ type: "assistant.message", payload: { messageId: "m1", text: "hi", final: false }, commandId: first.id, attempt: 1 }])
        yield* log.close(lease, [{ type: "session.idle", payload: { commandId: first.id, outcome: "acked" }, commandId: first.id, attempt: 1 }], { commandId: first.id, outcome: "acked" })
        const second = Option.getOrThrow(yield* queue.next(lease))
        yield* log.append(lease, [{ type: "session.idle", payload: { commandId: second.id, outcome: "acked" }, commandId: second.id, attempt: 1 }], { commandId: second.id, outcome: "acked" })
        assert.isTrue(yield* leases.releaseIfIdle(lease))
        return yield* xactScansOf("cloud_worker_leases")
      }))
      // The released lease's writes are still refused (the fence tests the same; only how it reaches the row changed).
      const stale = yield* Effect.flip(log.append(lease, [{ type: "session.idle", payload: {} }]))
      assert.strictEqual(stale._tag, "StaleOwner")
      assert.strictEqual(scans["cloud_worker_leases_owned"], 0, JSON.stringify(scans))
      assert.strictEqual(scans["cloud_worker_leases_worker"], 0, JSON.stringify(scans))
      assert.isAtLeast(scans["cloud_worker_leases_pkey"] ?? 0, 7, JSON.stringify(scans))
    }))

  it.effect("projection updates are HOT (no new index entry per append), and the lag query still finds a lagging projection", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const projections = yield* Projections
      yield* createSession("ses_hot", "org_hot")
      const updates = yield* sql.withTransaction(Effect.gen(function*() {
        for (let i = 1; i <= 5; i++) yield* enqueue("ses_hot", `cmd_hot_${i}`)
        const rows = yield* sql<{ updated: number; hot: number }>`SELECT
          pg_stat_get_xact_tuples_updated('cloud_session_projections'::regclass)::int AS updated,
          pg_stat_get_xact_tuples_hot_updated('cloud_session_projections'::regclass)::int AS hot`
        return rows[0]!
      }))
      assert.isAtLeast(Number(updates.updated), 5)
      assert.strictEqual(Number(updates.hot), Number(updates.updated), JSON.stringify(updates))
      assert.strictEqual(yield* projections.maxLag, 0)
      yield* sql`UPDATE cloud_session_projections SET projected_sequence = last_sequence - 4 WHERE session_id = 'ses_hot'`
      assert.strictEqual(yield* projections.maxLag, 4)
    }))

  it.effect("start and next start the command they locked (found again by its session and position), never walking the session's history index", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const queue = yield* CommandQueue
      yield* createSession("ses_again", "org_again")
      yield* historyThenBacklog("org_again")
      yield* enqueue("ses_again", "cmd_again_1")
      yield* enqueue("ses_again", "cmd_again_2")
      const epoch = (yield* sql<{ epoch: number }>`UPDATE cloud_worker_leases
        SET worker_id = 'worker-1', epoch = epoch + 1, expires_at = now() + interval '1 hour'
        WHERE session_id = 'ses_again' RETURNING epoch::int AS epoch`)[0]!.epoch
      const lease = { sessionId: "ses_again", workerId: "worker-1", epoch: Number(epoch) }
      const { first, second, scans } = yield* sql.withTransaction(Effect.gen(function*() {
        const first = Option.getOrThrow(yield* queue.start(lease))
        const second = Option.getOrThrow(yield* queue.next(lease))
        return { first, second, scans: yield* xactScans }
      }))
      assert.deepStrictEqual([first.id, second.id], ["cmd_again_1", "cmd_again_2"])
      const rows = yield* sql<{ id: string; status: string }>`SELECT id, status FROM cloud_session_commands WHERE session_id = 'ses_again' ORDER BY position`
      assert.deepStrictEqual(rows.map((row) => [row.id, row.status]), [["cmd_again_1", "running"], ["cmd_again_2", "running"]])
      assert.strictEqual(scans["cloud_session_commands_session"], 0, JSON.stringify(scans))
    }))
})
