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
})
