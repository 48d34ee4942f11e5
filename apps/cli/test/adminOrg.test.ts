import { assert, describe, it } from "@effect/vitest"
import { Database } from "@cowork/postgres"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { freshDatabaseUrl } from "../../../test/support/TestDatabase.ts"
import { runCli } from "../../../test/support/CoworkProcess.ts"

const json = (stdout: string) => JSON.parse(stdout.trim().split("\n")[0]!)

describe("cowork admin org", () => {
  it.live("create, a token, offboard: the report shows what ended and that nothing remains; offboarding again ends nothing", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabaseUrl
      const cli = (...args: ReadonlyArray<string>) => runCli(["admin", ...args], { OPEN_COWORK_DATABASE_URL: url })
      const orgId: string = json((yield* cli("org", "create", "--name", "leaving")).stdout).org.id
      assert.match(orgId, /^org_/)
      yield* cli("token", "create", "--scopes", "web", "--org", orgId)
      // A quota override, set and shown with the effective limits (audited).
      const quota = json((yield* cli("org", "quota", "--quota", "workflow_runs_per_hour", "--value", "5", orgId)).stdout)
      assert.deepStrictEqual(quota.overrides, { workflow_runs_per_hour: 5 })
      assert.deepInclude(quota.effective, { workflow_runs_per_hour: 5, prompts_per_hour: 600 })
      const both = yield* Effect.flip(cli("org", "quota", "--quota", "workflow_runs_per_hour", "--clear", "--value", "1", orgId))
      assert.include(both.message, "give --value N or --clear")
      // Artifact retention by age: nothing old yet; an age below a day is refused.
      assert.deepStrictEqual(json((yield* cli("artifacts", "prune", "--older-than-days", "30", "--org", orgId)).stdout).orgs, [])
      assert.include((yield* Effect.flip(cli("artifacts", "prune", "--older-than-days", "0"))).message, "between 1 and")
      const report = json((yield* cli("org", "offboard", orgId)).stdout)
      assert.strictEqual(report.orgId, orgId)
      assert.deepInclude(report.ended, { apiTokens: 1 })
      assert.isTrue(report.complete)
      assert.isTrue(Object.values(report.remaining).every((count) => count === 0), JSON.stringify(report.remaining))
      assert.deepStrictEqual(report.artifacts, { policy: "retain", deleted: 0, deletedBytes: 0, strayObjects: 0, remaining: 0 })
      const again = json((yield* cli("org", "offboard", "--artifacts", "delete", orgId)).stdout)
      assert.deepInclude(again.ended, { apiTokens: 0 })
      assert.deepInclude(again.artifacts, { policy: "delete", remaining: 0 })
      const missing = yield* Effect.flip(cli("org", "offboard", "org_missing"))
      assert.include(missing.message, "org org_missing not found")
      // An offboarded org gets no new token.
      const refused = yield* Effect.flip(cli("token", "create", "--scopes", "web", "--org", orgId))
      assert.include(refused.message, "is offboarded")
      // The token and the offboarding are in the org's audit log, by the CLI.
      const rows = yield* Effect.flatMap(Effect.service(SqlClient.SqlClient), (sql) => sql.unsafe<{ action: string; actor: string }>(
        `SELECT action, actor FROM cloud_audit_events WHERE org_id = $1 ORDER BY id`,
        [orgId]
      )).pipe(Effect.provide(Database.layer({ url: Redacted.make(url), maxConnections: 1 })))
      assert.deepStrictEqual(rows.map((row) => [row.action, row.actor]), [
        ["token.created", "cli:admin"],
        ["quota.override_set", "cli:admin"],
        ["org.offboarded", "cli:admin"],
        ["org.offboarded", "cli:admin"]
      ])
    }), { timeout: 120_000 })
})
