import { Database, PgSessionStore, PgTokens, runMigrations } from "@cowork/postgres"
import { SessionStore, Tokens } from "@cowork/services"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { freshDatabaseUrl } from "../../../test/support/TestDatabase.ts"

/** One "web process": its own client (own connections) and its own session store. */
const process = (url: string) =>
  PgSessionStore.layer.pipe(Layer.provideMerge(Database.layer({ url: Redacted.make(url), maxConnections: 2 })))

/**
 * The one-statement prompt admits under a quota only when its snapshot is as fresh as the transaction's: several
 * processes racing prompts of one org never queue past `queuedCommands` (a stale pending count would let each admit).
 */
describe("prompt enqueue under a quota, several processes", () => {
  it.effect("racing prompts of one org from 6 processes queue exactly up to the limit", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabaseUrl
      const setup = Layer.mergeAll(PgSessionStore.layer, PgTokens.layer).pipe(
        Layer.provideMerge(Database.layer({ url: Redacted.make(url), maxConnections: 2 }))
      )
      const { orgId, sessionIds } = yield* Effect.gen(function*() {
        yield* runMigrations
        const { orgId } = yield* (yield* Tokens).createOrg("race")
        const store = yield* SessionStore
        const sessionIds = yield* Effect.forEach(Array.from({ length: 6 }), () => Effect.map(store.create(orgId, {}), (s) => s.id))
        return { orgId, sessionIds }
      }).pipe(Effect.provide(setup))
      for (let round = 0; round < 4; round++) {
        const limit = 3 + round * 3
        const quota = { promptsPerHour: 1_000, queuedCommands: limit }
        // The hour's window row exists, and the queue is `limit - 3` deep: room for exactly 3 more.
        const results = yield* Effect.all(
          Array.from({ length: 6 }, (_, p) =>
            Effect.gen(function*() {
              const store = yield* SessionStore
              return yield* Effect.all(
                Array.from({ length: 4 }, (_, i) =>
                  Effect.result(store.prompt(orgId, sessionIds[p]!, { text: `r${round} p${p} #${i}`, quota }))),
                { concurrency: "unbounded" }
              )
            }).pipe(Effect.provide(process(url)))),
          { concurrency: "unbounded" }
        )
        const created = results.flat().filter((r) => r._tag === "Success").length
        const pending = yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const rows = yield* sql.unsafe<{ n: number }>(
            `SELECT count(*)::int AS n FROM cloud_session_commands WHERE org_id = $1 AND status = 'pending'`,
            [orgId]
          )
          return Number(rows[0]!.n)
        }).pipe(Effect.provide(setup))
        assert.strictEqual(pending, limit, `round ${round}: the queue is exactly at its limit`)
        assert.strictEqual(created, round === 0 ? limit : 3, `round ${round}: admitted up to the limit`)
      }
    }), 60_000)

  it.effect("racing prompts of one org from 6 processes for the hour's last unit: one is admitted, the rest refused with nothing written", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabaseUrl
      const setup = Layer.mergeAll(PgSessionStore.layer, PgTokens.layer).pipe(
        Layer.provideMerge(Database.layer({ url: Redacted.make(url), maxConnections: 2 }))
      )
      const counts = (orgId: string) =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const rows = yield* sql.unsafe<{ used: number; commands: number; submitted: number }>(
            `SELECT (SELECT coalesce(sum(used), 0)::int FROM cloud_quota_windows WHERE org_id = $1 AND quota = 'prompts_per_hour') AS used,
               (SELECT count(*)::int FROM cloud_session_commands WHERE org_id = $1) AS commands,
               (SELECT count(*)::int FROM cloud_session_events e JOIN cloud_sessions s ON s.id = e.session_id
                WHERE s.org_id = $1 AND e.type = 'prompt.submitted') AS submitted`,
            [orgId]
          )
          return { used: Number(rows[0]!.used), commands: Number(rows[0]!.commands), submitted: Number(rows[0]!.submitted) }
        }).pipe(Effect.provide(setup))
      const { orgId, sessionIds } = yield* Effect.gen(function*() {
        yield* runMigrations
        const { orgId } = yield* (yield* Tokens).createOrg("race")
        const store = yield* SessionStore
        const sessionIds = yield* Effect.forEach(Array.from({ length: 6 }), () => Effect.map(store.create(orgId, {}), (s) => s.id))
        return { orgId, sessionIds }
      }).pipe(Effect.provide(setup))
      let limit = 0
      for (const room of [1, 1, 3]) {
        // The hour's window row is `room` short of the limit.
        const before = yield* counts(orgId)
        limit = before.used + room
        const quota = { promptsPerHour: limit, queuedCommands: 1_000 }
        const results = yield* Effect.all(
          Array.from({ length: 6 }, (_, p) =>
            Effect.gen(function*() {
              const store = yield* SessionStore
              return yield* Effect.all(
                Array.from({ length: 4 }, (_, i) => Effect.result(store.prompt(orgId, sessionIds[p]!, { text: `p${p} #${i}`, quota }))),
                { concurrency: "unbounded" }
              )
            }).pipe(Effect.provide(process(url)))),
          { concurrency: "unbounded" }
        ).pipe(Effect.map((all) => all.flat()))
        const admitted = results.filter((r) => r._tag === "Success").length
        const refused = results.flatMap((r) => (r._tag === "Failure" ? [r.failure] : []))
        assert.strictEqual(admitted, room, `room for ${room}: exactly ${room} admitted`)
        assert.strictEqual(refused.length, 24 - room)
        for (const error of refused) {
          assert.strictEqual(error._tag, "RateLimited")
          assert.deepStrictEqual((error as { details?: unknown }).details, { quota: "prompts_per_hour", limit })
        }
        const after = yield* counts(orgId)
        assert.deepStrictEqual(after, { used: limit, commands: before.commands + room, submitted: before.submitted + room })
      }
    }), 60_000)

  it.effect("racing prompts of one org from 6 processes start no more sessions than concurrent_sessions allows", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabaseUrl
      const setup = Layer.mergeAll(PgSessionStore.layer, PgTokens.layer).pipe(
        Layer.provideMerge(Database.layer({ url: Redacted.make(url), maxConnections: 2 }))
      )
      const quota = { promptsPerHour: 1_000, queuedCommands: 1_000, concurrentSessions: 4 }
      const { orgId, sessionIds } = yield* Effect.gen(function*() {
        yield* runMigrations
        const { orgId } = yield* (yield* Tokens).createOrg("race")
        const store = yield* SessionStore
        const sessionIds = yield* Effect.forEach(Array.from({ length: 24 }), () => Effect.map(store.create(orgId, {}), (s) => s.id))
        // The hour's window row exists: one session at work already.
        yield* store.prompt(orgId, sessionIds[0]!, { text: "opening", quota })
        return { orgId, sessionIds }
      }).pipe(Effect.provide(setup))
      yield* Effect.all(
        Array.from({ length: 6 }, (_, p) =>
          Effect.gen(function*() {
            const store = yield* SessionStore
            // Each process prompts 4 sessions of its own (none at work yet).
            return yield* Effect.all(
              Array.from({ length: 4 }, (_, i) =>
                Effect.result(store.prompt(orgId, sessionIds[1 + p * 3 + (i % 3)]!, { text: `p${p} #${i}`, quota }))),
              { concurrency: "unbounded" }
            )
          }).pipe(Effect.provide(process(url)))),
        { concurrency: "unbounded" }
      )
      const active = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql.unsafe<{ n: number }>(
          `SELECT count(DISTINCT session_id)::int AS n FROM cloud_session_commands
           WHERE org_id = $1 AND kind = 'prompt' AND status IN ('pending', 'running')`,
          [orgId]
        )
        return Number(rows[0]!.n)
      }).pipe(Effect.provide(setup))
      assert.strictEqual(active, 4, "exactly the allowed number of sessions at work")
    }), 60_000)
})
