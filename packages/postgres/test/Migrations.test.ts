import { migrations, migrationsApplied, pendingMigrations, ReadinessChecks, runMigrations } from "@cowork/postgres"
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"

it.layer(TestDatabase.layer())("migrations", (it) => {
  it.effect("are applied once and are idempotent under concurrent runners", () =>
    Effect.gen(function*() {
      assert.isTrue(yield* migrationsApplied)
      const again = yield* Effect.all([runMigrations, runMigrations, runMigrations], { concurrency: "unbounded" })
      assert.deepStrictEqual(again.map((applied) => applied.length), [0, 0, 0])
      const sql = yield* SqlClient.SqlClient
      const tables = yield* sql<{ tablename: string }>`SELECT tablename FROM pg_tables WHERE tablename LIKE 'cloud_%' ORDER BY 1`
      for (const table of ["cloud_orgs", "cloud_api_tokens", "cloud_sessions", "cloud_session_commands", "cloud_session_events",
        "cloud_session_projections", "cloud_worker_leases", "cloud_worker_heartbeats", "cloud_audit_events"]) {
        assert.include(tables.map((t) => t.tablename), table)
      }
    }))

  it.effect("a database missing a migration between applied ones is not ready: the check names the missing ids", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const middle = migrations[1]!
      const highest = Math.max(...migrations.map((m) => m.id))
      assert.isBelow(middle.id, highest)
      yield* sql`DELETE FROM cloud_schema_migrations WHERE id = ${middle.id}`
      assert.deepStrictEqual(yield* pendingMigrations, [middle.id])
      assert.isFalse(yield* migrationsApplied, "the highest id is applied, a middle one is not")
      assert.deepStrictEqual(yield* ReadinessChecks.controlPlane, {
        name: "control_plane",
        status: "error",
        detail: `migrations pending: ${middle.id}`
      })
      yield* sql`INSERT INTO cloud_schema_migrations (id, name) VALUES (${middle.id}, ${middle.name})`
      assert.deepStrictEqual(yield* pendingMigrations, [])
      assert.deepStrictEqual(yield* ReadinessChecks.controlPlane, { name: "control_plane", status: "ok" })
    }))
})
