import { migrationsApplied, runMigrations } from "@cowork/postgres"
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
})
