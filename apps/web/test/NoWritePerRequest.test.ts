import { Identity } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { Browser } from "./support/Browser.ts"
import { baseUrl, layer, orgWithToken, request } from "./support/WebTestServer.ts"

/**
 * Authenticating a request costs no database write: token last-use and browser-session idle extension are written at
 * most once a minute. Every write to every control-plane table is logged by a statement trigger for the test's span.
 */
const installWriteLog = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS test_write_log (tbl text NOT NULL, op text NOT NULL)`)
  yield* sql.unsafe(`CREATE OR REPLACE FUNCTION test_log_write() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO test_write_log VALUES (TG_TABLE_NAME, TG_OP); RETURN NULL; END $$`)
  const tables = yield* sql.unsafe<{ name: string }>(
    `SELECT table_name AS name FROM information_schema.tables
     WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name LIKE 'cloud_%'`
  )
  for (const { name } of tables) {
    yield* sql.unsafe(`CREATE TRIGGER test_write_log AFTER INSERT OR UPDATE OR DELETE ON ${name}
      FOR EACH STATEMENT EXECUTE FUNCTION test_log_write()`)
  }
  return tables.length
}).pipe(Effect.orDie)

const writes = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  return yield* sql.unsafe<{ tbl: string; op: string }>(`SELECT tbl, op FROM test_write_log`)
}).pipe(Effect.orDie)

it.layer(layer)("no database write per authenticated request", (it) => {
  it.effect("50 token requests and 50 browser-session requests after a warm-up write nothing", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const { orgId, token } = yield* orgWithToken(["web"])
      const identity = yield* Identity
      const account = yield* identity.upsertAccount({ issuer: "https://idp", subject: "reader", email: null, name: null })
      yield* identity.setRole(orgId, account.id, "member")
      const opened = yield* identity.openSession({ orgId, accountId: account.id, lifetimes: { idleMs: 3_600_000, absoluteMs: 7_200_000 } })
      const web = yield* baseUrl
      const browser = new Browser()
      browser.setCookie(new URL(web).host, "cowork_session", Redacted.value(opened.cookie))

      assert.isAbove(yield* installWriteLog, 10)
      // Warm-up: the token's first use records last_used_at (once a minute at most).
      assert.strictEqual((yield* request("GET", "/api/sessions", { token })).status, 200)
      yield* sql.unsafe(`DELETE FROM test_write_log`).pipe(Effect.orDie)

      for (let i = 0; i < 50; i++) {
        assert.strictEqual((yield* request("GET", "/api/sessions", { token })).status, 200)
        assert.strictEqual((yield* Effect.promise(() => browser.request("GET", `${web}/api/workspace`))).status, 200)
      }
      assert.deepStrictEqual(yield* writes, [], "authenticated reads wrote to the database")

      // The log does see writes: a prompt is one (control for the instrument itself).
      const created = yield* request("POST", "/api/sessions", { token, body: {} })
      assert.strictEqual(created.status, 201)
      assert.isAbove((yield* writes).length, 0)
    }))
})
