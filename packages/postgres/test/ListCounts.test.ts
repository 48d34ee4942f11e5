import { EXACT_COUNT_LIMIT, PgDeliveryFeed, PgSessionStore, PgThreads } from "@cowork/postgres"
import { DeliveryFeed, SessionStore, Threads } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"

const Stores = Layer.mergeAll(PgSessionStore.layer, PgThreads.layer).pipe(Layer.provideMerge(TestDatabase.layer({ maxConnections: 4 })))

const SESSIONS = 10 * EXACT_COUNT_LIMIT

/** `SESSIONS` sessions of `org` (titles "stored thread <n> <md5 of n>"), with their projections, vacuumed. */
const seed = (org: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`INSERT INTO cloud_orgs (id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING`, [org])
    yield* sql.unsafe(`WITH s AS (INSERT INTO cloud_sessions (id, org_id, title)
        SELECT $1 || '_ses_' || g, $1, 'stored thread ' || g || ' ' || md5(g::text) FROM generate_series(1, $2) g RETURNING id)
      INSERT INTO cloud_session_projections (session_id, org_id, last_sequence) SELECT id, $1, 0 FROM s`, [org, SESSIONS])
    // As autovacuum leaves a table: statistics, and the trigram index's pending list merged into the index.
    yield* sql.unsafe(`VACUUM ANALYZE cloud_sessions`)
    yield* sql.unsafe(`VACUUM ANALYZE cloud_session_projections`)
  })

/**
 * Rows this transaction read from `table` and its btree indexes: sequential-scan tuples, index entries, heap fetches.
 * (A GIN index counts every posting-list entry of every trigram it intersects, not rows: left out.)
 */
const xactRowsRead = (table: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ n: number }>`SELECT (sum(pg_stat_get_xact_tuples_returned(c.oid)) + sum(pg_stat_get_xact_tuples_fetched(c.oid)))::int AS n
      FROM pg_class c WHERE c.relname = ${table}
        OR c.oid IN (SELECT i.indexrelid FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am a ON a.oid = ic.relam
          WHERE i.indrelid = ${table}::regclass AND a.amname = 'btree')`
    return Number(rows[0]!.n)
  })

/**
 * Runs `body` in one transaction and returns its result and the rows it read: the difference of the transaction's
 * counters before and after (they also hold statistics of earlier statements not yet flushed, e.g. the seed's).
 */
const measured = <A>(table: string, body: Effect.Effect<A, never, SqlClient.SqlClient | SessionStore | Threads>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return yield* sql.withTransaction(Effect.gen(function*() {
      const before = yield* xactRowsRead(table)
      const result = yield* body
      return { result, rowsRead: (yield* xactRowsRead(table)) - before }
    })).pipe(Effect.orDie)
  })

/** Issue 15 / enterprise-scale reads: a page of a large org's list reads about the page, not the whole org. */
it.layer(Stores, { timeout: 60_000 })("list totals and title search at scale", (it) => {
  it.effect("a page of the sessions and thread lists counts at most EXACT_COUNT_LIMIT + 1 matches, and beyond that reports the planner's estimate", () =>
    Effect.gen(function*() {
      yield* seed("org_big")
      const sessions = yield* SessionStore
      const threads = yield* Threads
      const list = yield* measured("cloud_sessions", sessions.list("org_big", { limit: 20 }))
      assert.strictEqual(list.result.sessions.length, 20)
      assert.isNotNull(list.result.nextCursor)
      assert.isAbove(list.result.totalEstimate, EXACT_COUNT_LIMIT, "beyond the exact limit: at least the limit")
      assert.isBelow(Math.abs(list.result.totalEstimate - SESSIONS), SESSIONS / 2, "the estimate is near the real count")
      assert.isBelow(list.rowsRead, SESSIONS / 2, `rows of cloud_sessions read for one page: ${list.rowsRead}`)
      const page = yield* measured("cloud_sessions", threads.list("org_big", "acct_viewer", { limit: 20 }))
      assert.strictEqual(page.result.threads.length, 20)
      assert.isAbove(page.result.totalEstimate, EXACT_COUNT_LIMIT)
      assert.isBelow(page.rowsRead, SESSIONS / 2, `rows of cloud_sessions read for one thread page: ${page.rowsRead}`)
      // Another org's page counts its own sessions exactly.
      yield* (yield* SqlClient.SqlClient).unsafe(`INSERT INTO cloud_orgs (id, name) VALUES ('org_small', 'small')`).pipe(Effect.orDie)
      const other = yield* sessions.create("org_small", { title: "the only one" })
      const small = yield* sessions.list("org_small", { limit: 20 })
      assert.deepStrictEqual(small.sessions.map((s) => s.id), [other.id])
      assert.strictEqual(small.totalEstimate, 1)
    }))

  it.effect("a title search can go through the trigram index: it reads the matches, not every session of the org", () =>
    Effect.gen(function*() {
      yield* seed("org_search")
      const sessions = yield* SessionStore
      // A piece of session 9999's md5 (its trigrams are rare, as a real title's words are): only that session matches.
      const sql = yield* SqlClient.SqlClient
      const [{ title }] = yield* sql<{ title: string }>`SELECT title FROM cloud_sessions WHERE id = 'org_search_ses_9999'`.pipe(Effect.orDie)
      const found = yield* measured("cloud_sessions", sessions.list("org_search", { limit: 20, q: title.slice(-32, -20) }))
      assert.deepStrictEqual(found.result.sessions.map((s) => s.title), [title])
      assert.strictEqual(found.result.totalEstimate, 1)
      assert.isBelow(found.rowsRead, SESSIONS / 2, `rows of cloud_sessions read for one search: ${found.rowsRead}`)
      // A search with more matches than the exact limit still pages and estimates.
      const many = yield* sessions.list("org_search", { limit: 20, q: "stored" })
      assert.strictEqual(many.sessions.length, 20)
      assert.isAbove(many.totalEstimate, EXACT_COUNT_LIMIT)
    }))

  it.effect("the tag list of a large org reads its tagged sessions, not every session", () =>
    Effect.gen(function*() {
      yield* seed("org_tags")
      const sessions = yield* SessionStore
      const threads = yield* Threads
      yield* sessions.create("org_tags", { title: "tagged a", tags: ["alpha", "beta"] })
      yield* sessions.create("org_tags", { title: "tagged b", tags: ["alpha"] })
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(`ANALYZE cloud_sessions`).pipe(Effect.orDie)
      const listed = yield* measured("cloud_sessions", threads.tags("org_tags"))
      assert.deepStrictEqual(listed.result, [{ tag: "alpha", count: 2 }, { tag: "beta", count: 1 }])
      assert.isBelow(listed.rowsRead, SESSIONS / 2, `rows of cloud_sessions read for the tag list: ${listed.rowsRead}`)
    }))

  it.effect("the smart-filter counts of a large org reach the few sessions mine / failed match through indexes, not every session", () =>
    Effect.gen(function*() {
      yield* seed("org_filters")
      const sessions = yield* SessionStore
      const threads = yield* Threads
      const sql = yield* SqlClient.SqlClient
      yield* sessions.create("org_filters", { title: "mine", createdBy: "account:me" })
      yield* sql.unsafe(`INSERT INTO cloud_session_commands (id, session_id, org_id, kind, payload, status)
        VALUES ('cmd_failed_1', 'org_filters_ses_7', 'org_filters', 'prompt', '{}'::jsonb, 'failed'),
               ('cmd_dead_1', 'org_filters_ses_8', 'org_filters', 'prompt', '{}'::jsonb, 'dead'),
               ('cmd_acked_1', 'org_filters_ses_9', 'org_filters', 'prompt', '{}'::jsonb, 'acked')`).pipe(Effect.orDie)
      yield* sql.unsafe(`ANALYZE cloud_sessions`).pipe(Effect.orDie)
      yield* sql.unsafe(`ANALYZE cloud_session_commands`).pipe(Effect.orDie)
      const counted = yield* measured("cloud_sessions", threads.smartFilters("org_filters", "account:me"))
      assert.deepStrictEqual(counted.result.map((f) => [f.id, f.count]), [["running", 0], ["failed", 2], ["mine", 1], ["recent", SESSIONS + 1]])
      assert.isBelow(counted.rowsRead, SESSIONS / 2, `rows of cloud_sessions read for the smart filters: ${counted.rowsRead}`)
    }))
})

// A database of its own: the plan of this search depends on the table's statistics, so no other org's rows in it.
it.layer(Stores, { timeout: 60_000 })("a search of old sessions", (it) => {
  it.effect("a search whose matches (under the exact limit) are the org's oldest sessions reads the matches, not the newer sessions before them", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(`INSERT INTO cloud_orgs (id, name) VALUES ('org_old', 'old')`).pipe(Effect.orDie)
      yield* sql.unsafe(`WITH s AS (INSERT INTO cloud_sessions (id, org_id, title, created_at)
          SELECT 'org_old_needle_' || g, 'org_old', 'needle ' || g, now() - interval '1 day' FROM generate_series(1, 900) g RETURNING id)
        INSERT INTO cloud_session_projections (session_id, org_id, last_sequence) SELECT id, 'org_old', 0 FROM s`).pipe(Effect.orDie)
      yield* seed("org_old")
      const sessions = yield* SessionStore
      const first = yield* measured("cloud_sessions", sessions.list("org_old", { limit: 20, q: "needle" }))
      assert.strictEqual(first.result.sessions.length, 20)
      assert.strictEqual(first.result.totalEstimate, 900)
      assert.isBelow(first.rowsRead, SESSIONS / 2, `rows of cloud_sessions read for a search of old sessions: ${first.rowsRead}`)
      const rest = yield* sessions.list("org_old", { limit: 1000, q: "needle", cursor: first.result.nextCursor! })
      const all = [...first.result.sessions, ...rest.sessions]
      assert.strictEqual(rest.nextCursor, null)
      assert.strictEqual(new Set(all.map((s) => s.id)).size, 900, "every match once across the pages")
      assert.deepStrictEqual(all.map((s) => s.id), [...all].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || (a.id < b.id ? 1 : -1)).map((s) => s.id), "newest first")
    }))
})

const Feed = PgDeliveryFeed.layer.pipe(Layer.provideMerge(TestDatabase.layer({ maxConnections: 4 })))

it.layer(Feed, { timeout: 60_000 })("the delivery feed's total at scale", (it) => {
  it.effect("a page of a large outbox counts at most EXACT_COUNT_LIMIT + 1 deliveries, then the planner's estimate; a few matches exactly", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const deliveries = 3 * EXACT_COUNT_LIMIT
      yield* sql.unsafe(`INSERT INTO cloud_orgs (id, name) VALUES ('org_outbox', 'outbox')`)
      yield* sql.unsafe(`INSERT INTO cloud_channel_bindings (id, org_id, provider_kind, provider_id, display_name, external_target)
        VALUES ('chb_busy', 'org_outbox', 'webhook', 'hook', 'busy', 't1'), ('chb_quiet', 'org_outbox', 'webhook', 'hook', 'quiet', 't2')`)
      yield* sql.unsafe(`INSERT INTO cloud_channel_deliveries (id, org_id, channel_binding_id, route_id, session_id, event_id, event_sequence,
          event_type, kind, payload, status, idempotency_key)
        SELECT 'chd_' || g, 'org_outbox', 'chb_busy', 'route', 'ses_x', 'evt_' || g, g, 'assistant.message', 'message', '{}'::jsonb,
          CASE WHEN g <= 10 THEN 'sent' ELSE 'pending' END, 'key_' || g
        FROM generate_series(1, $1::int) g`, [deliveries])
      yield* sql.unsafe(`VACUUM ANALYZE cloud_channel_deliveries`)
      const feed = yield* DeliveryFeed
      const read = <A>(body: Effect.Effect<A>) =>
        sql.withTransaction(Effect.gen(function*() {
          const before = yield* xactRowsRead("cloud_channel_deliveries")
          const result = yield* body
          return { result, rowsRead: (yield* xactRowsRead("cloud_channel_deliveries")) - before }
        }))
      const all = yield* read(feed.list({ orgId: "org_outbox" }, { limit: 50 }))
      assert.strictEqual(all.result.deliveries.length, 50)
      assert.isAbove(all.result.totalEstimate, EXACT_COUNT_LIMIT, "beyond the exact limit: at least the limit")
      assert.isBelow(Math.abs(all.result.totalEstimate - deliveries), deliveries / 2, "the estimate is near the real count")
      assert.isBelow(all.rowsRead, deliveries, `rows of cloud_channel_deliveries read for one page: ${all.rowsRead}`)
      assert.strictEqual((yield* feed.list({ orgId: "org_outbox" }, { limit: 50, status: "sent" })).totalEstimate, 10)
      assert.strictEqual((yield* feed.list({ orgId: "org_outbox" }, { limit: 50, channelBindingId: "chb_quiet" })).totalEstimate, 0)
      assert.strictEqual((yield* feed.list({ orgId: "org_outbox", bindingIds: ["chb_quiet"] }, { limit: 50 })).totalEstimate, 0)
      assert.strictEqual((yield* feed.list({ orgId: "org_outbox", bindingIds: ["chb_busy"] }, { limit: 50, status: "sent" })).totalEstimate, 10)
      assert.strictEqual((yield* feed.list({ orgId: "org_other" }, { limit: 50 })).totalEstimate, 0, "another org's are not counted")
    }).pipe(Effect.orDie))
})
